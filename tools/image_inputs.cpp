#include "tools/image_inputs.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <unordered_set>

#include "model/image_pipeline.h"
#include "runtime/error.h"

namespace caption::cli {

std::unique_ptr<ResNet50> load_encoder(Context& ctx, const ModelFiles& files, bool tf32) {
  if (!files.config.encoder)
    throw InputError(join_path(files.dir, "config.json"), "the model has no encoder (image input needs one)");
  if (!image_support_available()) throw std::runtime_error("this build has no image support (built without OpenCV)");
  return std::make_unique<ResNet50>(ctx, *files.config.encoder, files.encoder_weights,
                                    join_path(files.dir, files.config.encoder->weights), tf32);
}

FeatureTable encode_image_files(ResNet50& encoder, const std::vector<std::string>& paths,
                                const ImageRunOptions& opt, Progress& progress, size_t* failed) {
  FeatureTable table;
  table.dim = encoder.feature_dim();
  std::unordered_set<std::string> names;
  size_t done = 0;
  *failed = 0;
  auto t0 = std::chrono::steady_clock::now();
  encode_images(
      encoder, paths, opt.batch, opt.threads,
      [&](const EncodedBatch& b) {
        for (size_t k = 0; k < b.indices.size(); ++k) {
          const std::string name = std::filesystem::path(paths[b.indices[k]]).filename().string();
          if (!names.insert(name).second) {
            progress.line("warning: " + paths[b.indices[k]] + ": skipped, an earlier image has the same file name");
            ++*failed;
            continue;
          }
          table.images.push_back(name);
          table.data.insert(table.data.end(), b.features.begin() + k * table.dim,
                            b.features.begin() + (k + 1) * table.dim);
        }
        done += b.indices.size();
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        double rate = (done + *failed) / std::max(s, 1e-9);
        char buf[128];
        std::snprintf(buf, sizeof buf, "%zu/%zu images, %.1f images/s, ETA %s", done + *failed, paths.size(), rate,
                      format_duration((paths.size() - done - *failed) / std::max(rate, 1e-9)).c_str());
        progress.update(double(done + *failed) / paths.size(), buf);
      },
      [&](size_t, const std::string& error) {
        progress.line("warning: " + error + " (skipped)");
        ++*failed;
      });
  progress.finish_line();
  table.reindex();
  return table;
}

}  // namespace caption::cli
