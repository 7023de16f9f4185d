// caption features: image files to an image-features file (safetensors, one tensor per image).
#include <chrono>
#include <filesystem>
#include <memory>

#include "model/image_loader.h"
#include "model/image_pipeline.h"
#include "model/read_file.h"
#include "runtime/error.h"
#include "tools/commands.h"
#include "tools/device_options.h"
#include "tools/features_writer.h"
#include "tools/image_inputs.h"
#include "tools/shard.h"

namespace caption::cli {

Command add_features(CLI::App& app) {
  auto* sub = app.add_subcommand("features", "Encode images into a features file with the model's encoder");
  struct Args {
    std::string model, output, shard = "0/1";
    bool resume = false;
    std::vector<std::string> inputs;
    ImageRunOptions run;
    DeviceOptions device;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--model", a->model, "model directory with an encoder")->required();
  sub->add_option("inputs", a->inputs, "image files, folders (recursive) and @list.txt files")->required();
  sub->add_option("--output", a->output, "features file to write (.safetensors)")->required();
  sub->add_option("--batch", a->run.batch, "images per encoder batch")->capture_default_str();
  sub->add_option("--shard", a->shard, "i/n: encode only inputs i, i+n, i+2n, ... (0 <= i < n)")
      ->capture_default_str();
  sub->add_flag("--resume", a->resume,
                "continue a job that stopped: keep the features in OUTPUT.partial, encode the rest");
  add_image_run_options(sub, a->run);
  add_device_options(sub, a->device);
  return {sub, [a] {
            if (a->run.batch < 1) throw std::invalid_argument("--batch must be >= 1");
            const Shard shard = parse_shard(a->shard);
            const auto paths = take_shard(expand_image_inputs(a->inputs), shard);
            if (paths.empty()) throw InputError(a->inputs.front(), "no images found");
            ModelFiles files = load_model_dir(a->model);
            Context ctx(a->device.parse(), a->device.memory_limit_bytes());
            auto encoder = load_encoder(ctx, files, a->run);
            Progress progress(Progress::stderr_is_terminal());
            FeaturesWriter out(a->output, encoder->feature_dim(), a->resume);
            const std::vector<std::string> todo =
                resume_todo(paths, [&](const std::string& p) { return out.has_path(p); }, "encoded", progress);
            FailedImages failed(todo.size(), progress);
            size_t done = 0;  // images encoded or failed in this run
            bool noted = false;
            const auto t0 = std::chrono::steady_clock::now();
            encode_images(
                *encoder, todo, a->run.batch, a->run.threads,
                [&](const EncodedBatch& b) {
                  note_split(progress, a->run.batch, b.encoder_batch, 0, noted);
                  for (size_t k = 0; k < b.indices.size(); ++k) {
                    const std::string& path = todo[b.indices[k]];
                    const std::string name = std::filesystem::path(path).filename().string();
                    // Features are keyed by file name: UTF-8 (safetensors names), one image each.
                    if (!is_utf8(name))
                      failed.add(path + ": the file name is not valid UTF-8, so it cannot key a features file");
                    else if (name == "__metadata__")
                      failed.add(path + ": the file name '__metadata__' is reserved in safetensors files");
                    else if (out.has_image(name))
                      failed.add(path + ": an earlier image has the same file name");
                    else
                      out.add(name, path, b.features.data() + k * size_t(encoder->feature_dim()));
                  }
                  out.flush();
                  done += b.indices.size();
                  progress.update(double(done) / todo.size(), rate_status(done, todo.size(), "images", t0));
                },
                [&](size_t, const std::string& error) {
                  ++done;
                  failed.add(error);
                });
            progress.finish_line();
            if (out.count() == 0) failed.throw_nothing_read();
            out.commit();
            progress.line("wrote " + std::to_string(out.count()) + " image features to " + a->output);
            failed.summary();
            return failed.count() ? 2 : 0;
          }};
}

}  // namespace caption::cli
