#pragma once
// Shared by the commands that read images: the encoder of a model directory, and a feature
// table built from image files through the batched pipeline, with failures reported.
#include <memory>
#include <string>
#include <vector>

#include "model/features.h"
#include "model/model_dir.h"
#include "model/resnet50.h"
#include "tools/progress.h"

namespace caption::cli {

struct ImageRunOptions {
  int batch = 32;
  int threads = 2;  // decode threads
  bool tf32 = false;
};

std::unique_ptr<ResNet50> load_encoder(Context& ctx, const ModelFiles& files, bool tf32);

// Encodes `paths`, keyed by file name. Unreadable images (and repeated file names) are reported
// on stderr and counted in `failed`; the rest are returned in input order.
FeatureTable encode_image_files(ResNet50& encoder, const std::vector<std::string>& paths,
                                const ImageRunOptions& opt, Progress& progress, size_t* failed);

}  // namespace caption::cli
