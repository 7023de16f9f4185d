#pragma once
// Images from disk to the network's input size: OpenCV decoding (JPEG, PNG, BMP, WebP, ...),
// grayscale expanded to 3 channels, alpha dropped, 16-bit scaled to 8, RGB order; then
// "squash" (resize to size x size, bilinear, as Keras load_img(target_size)) or
// "center-crop" (shorter side to 256 (scaled with size), centre size x size crop: torchvision).
#include <cstdint>
#include <string>
#include <vector>

namespace caption {

enum class ResizeMode { Squash, CenterCrop };

struct ImageOptions {
  ResizeMode resize = ResizeMode::Squash;
  int image_size = 224;
  int64_t max_pixels = 100'000'000;  // larger images are refused (before decoding where possible)
};

// False in builds without OpenCV: image input then fails with a clear error.
bool image_support_available();

// A small JPEG of the whole image (aspect kept, longer side at most max_side) for galleries,
// made from the same decode as the network input.
struct Thumbnail {
  int max_side = 0;
  std::string jpeg;
};

// Writes image_size*image_size*3 RGB bytes (row-major HWC) to `out`, and fills `thumbnail`
// when given. Throws InputError(path, reason) for anything unreadable (missing, empty,
// truncated, not an image, too large, a directory).
void load_image(const std::string& path, const ImageOptions& opt, uint8_t* out, Thumbnail* thumbnail = nullptr);

// Expands command-line inputs: image files as given, folders recursively (files with an image
// extension, sorted by path), and @list.txt files (one path per line, relative to the list's
// folder). A command-line path that is missing or cannot be looked up (a link loop) is an
// InputError; anything else unreadable (such a list entry, a bad file in a folder) is kept, for
// load_image to report when its turn comes.
std::vector<std::string> expand_image_inputs(const std::vector<std::string>& inputs);

}  // namespace caption
