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
  auto* tf32 = sub->add_flag("--tf32", opt.encoder.tf32, "CUDA: allow TF32 tensor cores in convolutions");
  sub->add_flag("--bf16", opt.encoder.bf16,
                "CUDA: run the encoder in bfloat16 on tensor cores (FP32 accumulation; features move by about "
                "0.5% of their largest value)")
      ->excludes(tf32);
  // Names on the command line, EncoderOptions' values (and defaults) behind them.
  sub->add_option_function<std::string>(
         "--conv-layout", [&opt](const std::string& v) { opt.encoder.layout = v == "nchw" ? Layout::NCHW : Layout::NHWC; },
         "CUDA: the encoder's activation layout, nhwc or nchw")
      ->check(CLI::IsMember({"nhwc", "nchw"}))
      ->default_str(layout_name(opt.encoder.layout));
  sub->add_option_function<std::string>(
         "--conv-search",
         [&opt](const std::string& v) {
           for (ConvSearch s : {ConvSearch::Heuristic, ConvSearch::Timed, ConvSearch::Matmul})
             if (v == search_name(s)) opt.encoder.search = s;
         },
         "CUDA: how each convolution's algorithm is chosen: heuristic (cuDNN's ranking, the same in every run), "
         "timed (the fastest candidate, a cuBLASLt matmul among them in NHWC; costs time on each batch size's "
         "first batch) or matmul (that matmul for every NHWC convolution, cuDNN's ranking where it has none)")
      ->check(CLI::IsMember({"heuristic", "timed", "matmul"}))
      ->default_str(search_name(opt.encoder.search));
}

std::unique_ptr<ResNet50> load_encoder(Context& ctx, const ModelFiles& files, const ImageRunOptions& opt) {
  if (!files.config.encoder)
    throw InputError(join_path(files.dir, "config.json"), "the model has no encoder (image input needs one)");
  if (!image_support_available()) throw std::runtime_error("this build has no image support (built without OpenCV)");
  EncoderConfig config = *files.config.encoder;
  config.max_pixels = opt.max_pixels;
  return std::make_unique<ResNet50>(ctx, config, files.encoder_weights, join_path(files.dir, config.weights),
                                    opt.encoder);
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
