// caption describe: captions for images, from image files (encoder + decoder) or from
// precomputed features.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "model/atomic_file.h"
#include "model/captioner.h"
#include "model/captions.h"
#include "runtime/error.h"
#include "tools/commands.h"
#include "tools/image_inputs.h"
#include "tools/model_loader.h"
#include "tools/progress.h"

namespace caption::cli {
namespace {

std::string csv_field(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

Command add_describe(CLI::App& app) {
  auto* sub = app.add_subcommand("describe", "Caption images (files or precomputed features)");
  struct Args {
    std::string model, features, images, output, format = "jsonl", device = "auto";
    std::vector<std::string> inputs;
    DecodeOptions decode;
    ImageRunOptions run;
  };
  auto a = std::make_shared<Args>();
  a->run.threads = int(std::max(1u, std::thread::hardware_concurrency()));
  a->model = CAPTION_DEFAULT_MODEL;
  sub->add_option("--model", a->model, "model directory (default: the bundled flickr8k-resnet50c4)");
  sub->add_option("inputs", a->inputs, "image files, folders (recursive) and @list.txt files");
  sub->add_option("--features", a->features, "precomputed image features (.safetensors) instead of images")
      ->check(CLI::ExistingFile);
  sub->add_option("--images", a->images, "with --features: only these images (one name per line)")
      ->check(CLI::ExistingFile);
  sub->add_option("--beam", a->decode.beam, "beam width (1: greedy)")->capture_default_str();
  sub->add_option("--length-penalty", a->decode.length_penalty,
                  "beam score = sum log p / (words+1)^alpha")->capture_default_str();
  sub->add_option("--batch", a->decode.batch, "images encoded and decoded together")->capture_default_str();
  sub->add_option("--threads", a->run.threads, "image decoding threads")->capture_default_str();
  auto* no_unk = sub->add_flag("--no-unk", "never emit <unk> (rare words)");
  sub->add_option("--output", a->output, "file to write (default: standard output)");
  sub->add_option("--format", a->format, "jsonl or csv")->check(CLI::IsMember({"jsonl", "csv"}))->capture_default_str();
  sub->add_option("--device", a->device, "auto, cpu or cuda")->capture_default_str();
  return {sub, [a, no_unk] {
            a->decode.allow_unk = !*no_unk;
            if (a->decode.beam < 1 || a->decode.batch < 1) throw std::invalid_argument("--beam and --batch must be >= 1");
            if (a->features.empty() == a->inputs.empty())
              throw std::invalid_argument("give image files/folders or --features, not both");
            auto model = load_model(a->model, parse_device(a->device));
            Progress progress(Progress::stderr_is_terminal() && !a->output.empty());
            FeatureTable features;
            size_t failed = 0;
            if (!a->features.empty()) {
              features = read_features(a->features);
              check_features(features, a->features, model);
              if (!a->images.empty()) features = select_images(features, read_image_list(a->images), a->images);
            } else {
              auto paths = expand_image_inputs(a->inputs);
              if (paths.empty()) throw InputError(a->inputs.front(), "no images found");
              auto encoder = load_encoder(*model.ctx, model.files, a->run.tf32);
              if (encoder->feature_dim() != model.files.config.decoder.feature_dim)
                throw InputError(a->model, "the encoder gives " + std::to_string(encoder->feature_dim()) +
                                               "-d features, the decoder expects " +
                                               std::to_string(model.files.config.decoder.feature_dim));
              a->run.batch = a->decode.batch;
              features = encode_image_files(*encoder, paths, a->run, progress, &failed);
            }
            a->decode.max_len = model.files.config.decoder.max_len;
            std::string text = a->format == "csv" ? "image,caption\n" : "";
            const int n = int(features.images.size()), chunk = a->decode.batch;
            for (int first = 0; first < n; first += chunk) {
              int count = std::min(chunk, n - first);
              auto ids = generate(*model.decoder, features.row(first), count, a->decode);
              std::string part;
              for (int i = 0; i < count; ++i) {
                const std::string& image = features.images[first + i];
                std::string caption = caption_text(model.files.vocab, ids[i]);
                if (a->format == "csv") part += csv_field(image) + "," + csv_field(caption) + "\n";
                else part += nlohmann::ordered_json{{"image", image}, {"caption", caption}}.dump() + "\n";
              }
              if (a->output.empty()) std::cout << (first == 0 ? text : "") << part << std::flush;
              else text += part;
              if (a->output.empty()) text.clear();
              progress.update(double(first + count) / n, std::to_string(first + count) + "/" + std::to_string(n) + " captions");
            }
            progress.finish_line();
            if (!a->output.empty()) write_file_atomic(a->output, text);
            if (failed) progress.line(std::to_string(failed) + " images could not be read (see the warnings above)");
            return failed ? 2 : 0;
          }};
}

}  // namespace caption::cli
