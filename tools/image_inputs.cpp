#include "tools/image_inputs.h"

#include <stdexcept>

#include "model/image_loader.h"
#include "runtime/error.h"

namespace caption::cli {

std::unique_ptr<ResNet50> load_encoder(Context& ctx, const ModelFiles& files, bool tf32) {
  if (!files.config.encoder)
    throw InputError(join_path(files.dir, "config.json"), "the model has no encoder (image input needs one)");
  if (!image_support_available()) throw std::runtime_error("this build has no image support (built without OpenCV)");
  return std::make_unique<ResNet50>(ctx, *files.config.encoder, files.encoder_weights,
                                    join_path(files.dir, files.config.encoder->weights), tf32);
}

void FailedImages::add(const std::string& error) {
  ++count_;
  if (total_ == 1) only_error_ = error;
  else progress_.line("warning: " + error + " (skipped)");
}

void FailedImages::throw_nothing_read() const {
  if (total_ == 1 && !only_error_.empty()) throw std::runtime_error(only_error_);
  throw std::runtime_error("none of the " + std::to_string(total_) + " images could be read; nothing written");
}

void FailedImages::summary() const {
  if (count_)
    progress_.line(std::to_string(count_) + " of " + std::to_string(total_) +
                   " images could not be read (see the warnings above)");
}

}  // namespace caption::cli
