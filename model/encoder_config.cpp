#include "model/encoder_config.h"

#include "runtime/error.h"

namespace caption {
namespace {

template <class T>
T get(const nlohmann::json& j, const char* key, T fallback, const std::string& path) {
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    throw InputError(path, std::string("encoder.") + key + ": wrong type (" + it->dump() + ")");
  }
}

}  // namespace

EncoderConfig parse_encoder_config(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object()) throw InputError(path, "encoder: expected an object");
  EncoderConfig c;
  c.arch = get<std::string>(j, "arch", c.arch, path);
  if (c.arch != "resnet50") throw InputError(path, "encoder.arch: only \"resnet50\" is supported, found \"" + c.arch + "\"");
  c.stages = get<int>(j, "stages", c.stages, path);
  if (c.stages != 4 && c.stages != 5) throw InputError(path, "encoder.stages: expected 4 or 5");
  c.stride_in_1x1 = get<bool>(j, "stride_in_1x1", c.stride_in_1x1, path);
  c.bn_eps = get<float>(j, "bn_eps", c.bn_eps, path);
  if (!(c.bn_eps > 0)) throw InputError(path, "encoder.bn_eps: expected a positive number");
  std::string pre = get<std::string>(j, "preprocess", c.preprocess == Normalization::Caffe ? "caffe" : "torch", path);
  if (pre != "caffe" && pre != "torch") throw InputError(path, "encoder.preprocess: expected \"caffe\" or \"torch\"");
  c.preprocess = pre == "caffe" ? Normalization::Caffe : Normalization::Torch;
  std::string resize = get<std::string>(j, "resize", c.resize == ResizeMode::Squash ? "squash" : "center-crop", path);
  if (resize != "squash" && resize != "center-crop")
    throw InputError(path, "encoder.resize: expected \"squash\" or \"center-crop\"");
  c.resize = resize == "squash" ? ResizeMode::Squash : ResizeMode::CenterCrop;
  c.image_size = get<int>(j, "image_size", c.image_size, path);
  if (c.image_size < 32 || c.image_size > 4096) throw InputError(path, "encoder.image_size: expected 32..4096");
  c.weights = get<std::string>(j, "weights", c.weights, path);
  if (c.weights.empty()) throw InputError(path, "encoder.weights: expected a file name");
  return c;
}

nlohmann::json encoder_config_json(const EncoderConfig& c) {
  return {{"arch", c.arch},
          {"stages", c.stages},
          {"stride_in_1x1", c.stride_in_1x1},
          {"bn_eps", double(c.bn_eps)},
          {"preprocess", c.preprocess == Normalization::Caffe ? "caffe" : "torch"},
          {"resize", c.resize == ResizeMode::Squash ? "squash" : "center-crop"},
          {"image_size", c.image_size},
          {"weights", c.weights}};
}

}  // namespace caption
