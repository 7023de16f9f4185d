#pragma once
// Shared by the commands that read images: the encoder of a model directory, and how a batch
// job reports the images it could not read.
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "model/model_dir.h"
#include "model/resnet50.h"
#include "tools/progress.h"

namespace caption::cli {

struct ImageRunOptions {
  int batch = 32;
  int threads = 2;  // decode threads
  EncoderOptions encoder;  // its defaults are the CLI's
  int64_t max_pixels = ImageOptions().max_pixels;
};

// Adds --threads, --max-pixels, --tf32, --bf16, --conv-layout and --conv-search to a command that
// reads images.
void add_image_run_options(CLI::App* sub, ImageRunOptions& opt);

std::unique_ptr<ResNet50> load_encoder(Context& ctx, const ModelFiles& files, const ImageRunOptions& opt);

// Unreadable images of a job over `total` inputs: each is a warning line and the job goes on;
// when the only input fails, its error becomes the command's one error line instead.
class FailedImages {
 public:
  FailedImages(size_t total, Progress& progress) : total_(total), progress_(progress) {}
  void add(const std::string& error);
  size_t count() const { return count_; }
  // When nothing could be read: throws the error the command ends with.
  [[noreturn]] void throw_nothing_read() const;
  // After a job that wrote something: one line saying how many failed, if any.
  void summary() const;

 private:
  size_t total_, count_ = 0;
  Progress& progress_;
  std::string only_error_;
};

// Says once (`noted`) that batches of `asked` images were split because device memory ran short
// (decoder_batch 0: a job without a decoder).
void note_split(Progress& progress, int asked, int encoder_batch, int decoder_batch, bool& noted);

}  // namespace caption::cli
