#include "model/encoder_config.h"

#include <cmath>

#include "model/json_fields.h"
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
  if (j.contains("stages")) c.stages = json_int(j["stages"], path, "encoder.stages", 4, 5);
  c.stride_in_1x1 = get<bool>(j, "stride_in_1x1", c.stride_in_1x1, path);
  if (j.contains("bn_eps")) c.bn_eps = float(json_number(j["bn_eps"], path, "encoder.bn_eps"));
  if (!(c.bn_eps > 0) || !std::isfinite(c.bn_eps))
    throw InputError(path, "encoder.bn_eps: expected a positive number that a float holds");
  std::string pre = get<std::string>(j, "preprocess", c.preprocess == Normalization::Caffe ? "caffe" : "torch", path);
  if (pre != "caffe" && pre != "torch") throw InputError(path, "encoder.preprocess: expected \"caffe\" or \"torch\"");
  c.preprocess = pre == "caffe" ? Normalization::Caffe : Normalization::Torch;
  std::string resize = get<std::string>(j, "resize", c.resize == ResizeMode::Squash ? "squash" : "center-crop", path);
  if (resize != "squash" && resize != "center-crop")
    throw InputError(path, "encoder.resize: expected \"squash\" or \"center-crop\"");
  c.resize = resize == "squash" ? ResizeMode::Squash : ResizeMode::CenterCrop;
  if (j.contains("image_size")) c.image_size = json_int(j["image_size"], path, "encoder.image_size", 32, 4096);
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
