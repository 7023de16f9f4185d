#include "tools/image_inputs.h"

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "model/image_loader.h"
#include "runtime/error.h"

namespace caption::cli {

void add_image_run_options(CLI::App* sub, ImageRunOptions& opt) {
  opt.threads = int(std::max(1u, std::thread::hardware_concurrency()));
  sub->add_option("--threads", opt.threads, "image decoding threads")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--max-pixels", opt.max_pixels,
                  "refuse images with more pixels than this (read from the header, before decoding)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  auto* tf32 = sub->add_flag("--tf32", opt.tf32, "CUDA: allow TF32 tensor cores in convolutions");
  sub->add_flag("--bf16", opt.bf16,
                "CUDA: run the encoder in bfloat16 on tensor cores (FP32 accumulation; features move by about "
                "0.5% of their largest value)")
      ->excludes(tf32);
  sub->add_option("--conv-layout", opt.conv_layout, "CUDA: the encoder's activation layout, nhwc or nchw")
      ->capture_default_str()
      ->check(CLI::IsMember({"nhwc", "nchw"}));
  sub->add_option("--conv-search", opt.conv_search,
                  "CUDA: how each convolution's cuDNN algorithm is chosen: heuristic (cuDNN's ranking, the same in "
                  "every run) or timed (the fastest candidate; costs time on each batch size's first batch)")
      ->capture_default_str()
      ->check(CLI::IsMember({"heuristic", "timed"}));
}

std::unique_ptr<ResNet50> load_encoder(Context& ctx, const ModelFiles& files, const ImageRunOptions& opt) {
  if (!files.config.encoder)
    throw InputError(join_path(files.dir, "config.json"), "the model has no encoder (image input needs one)");
  if (!image_support_available()) throw std::runtime_error("this build has no image support (built without OpenCV)");
  EncoderConfig config = *files.config.encoder;
  config.max_pixels = opt.max_pixels;
  return std::make_unique<ResNet50>(ctx, config, files.encoder_weights, join_path(files.dir, config.weights),
                                    EncoderOptions{opt.tf32, opt.conv_layout == "nchw" ? Layout::NCHW : Layout::NHWC,
                                                   opt.conv_search == "timed" ? ConvSearch::Timed
                                                                              : ConvSearch::Heuristic,
                                                   opt.bf16});
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

void note_split(Progress& progress, int asked, int encoder_batch, int decoder_batch, bool& noted) {
  if (noted || (encoder_batch >= asked && (decoder_batch == 0 || decoder_batch >= asked))) return;
  std::string pieces = "encoder batches of " + std::to_string(encoder_batch);
  if (decoder_batch > 0) pieces += " and decoder batches of " + std::to_string(decoder_batch);
  progress.line("note: a batch of " + std::to_string(asked) + " images did not fit in device memory; going on with " +
                pieces + " (the results are the same)");
  noted = true;
}

}  // namespace caption::cli
