// caption features: image files to an image-features file (safetensors, one tensor per image).
#include <memory>
#include <thread>

#include "model/image_loader.h"
#include "tools/commands.h"
#include "tools/image_inputs.h"
#include "runtime/error.h"

namespace caption::cli {

Command add_features(CLI::App& app) {
  auto* sub = app.add_subcommand("features", "Encode images into a features file with the model's encoder");
  struct Args {
    std::string model, output, device = "auto";
    std::vector<std::string> inputs;
    ImageRunOptions run;
  };
  auto a = std::make_shared<Args>();
  a->run.threads = int(std::max(1u, std::thread::hardware_concurrency()));
  sub->add_option("--model", a->model, "model directory with an encoder")->required();
  sub->add_option("inputs", a->inputs, "image files, folders (recursive) and @list.txt files")->required();
  sub->add_option("--output", a->output, "features file to write (.safetensors)")->required();
  sub->add_option("--batch", a->run.batch, "images per encoder batch")->capture_default_str();
  sub->add_option("--threads", a->run.threads, "image decoding threads")->capture_default_str();
  sub->add_flag("--tf32", a->run.tf32, "CUDA: allow TF32 tensor cores in convolutions");
  sub->add_option("--device", a->device, "auto, cpu or cuda")->capture_default_str();
  return {sub, [a] {
            if (a->run.batch < 1) throw std::invalid_argument("--batch must be >= 1");
            auto paths = expand_image_inputs(a->inputs);
            if (paths.empty()) throw InputError(a->inputs.front(), "no images found");
            ModelFiles files = load_model_dir(a->model);
            Context ctx(parse_device(a->device));
            auto encoder = load_encoder(ctx, files, a->run.tf32);
            Progress progress(Progress::stderr_is_terminal());
            size_t failed = 0;
            FeatureTable table = encode_image_files(*encoder, paths, a->run, progress, &failed);
            if (table.images.empty()) throw std::runtime_error("no image could be read; nothing written");
            write_features(a->output, table);
            progress.line("wrote " + std::to_string(table.images.size()) + " image features to " + a->output +
                          (failed ? "; " + std::to_string(failed) + " images failed" : ""));
            return failed ? 2 : 0;
          }};
}

}  // namespace caption::cli
