#pragma once
// Images to features in batches: worker threads decode and resize images, all of them on the
// oldest batch not yet decoded, while the calling thread runs the encoder on the batches before.
// On CUDA the workers decode into pinned buffers, and the encoder uploads one batch while it
// computes the one before (two streams). The decoded images wait in a small ring of buffers
// reused for the whole run (the encoder's two batches, and room for the workers to run ahead by
// at least two batches and at least 2 * threads images), so a collection of any size runs in
// bounded memory.
// Results come back in input order; an image that fails to load is reported (before its
// batch's features) and left out, never stops the run. thumbnail_side > 0 also makes a small
// JPEG of each image (in the decode threads). A batch that runs out of device memory is encoded
// in smaller pieces (run_in_pieces).
#include <functional>
#include <string>
#include <vector>

#include "model/resnet50.h"

namespace caption {

struct EncodedBatch {
  std::vector<size_t> indices;  // into the input paths, ascending
  std::vector<float> features;  // [indices.size(), feature_dim]
  std::vector<std::string> thumbnails;  // JPEG per image when thumbnails were asked for
  int encoder_batch = 0;  // images per encoder call: below `batch` after running out of device memory
};

void encode_images(ResNet50& encoder, const std::vector<std::string>& paths, int batch, int threads,
                   const std::function<void(const EncodedBatch&)>& on_batch,
                   const std::function<void(size_t index, const std::string& error)>& on_error,
                   int thumbnail_side = 0);

}  // namespace caption
