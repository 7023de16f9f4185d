#pragma once
// The "encoder" object of a model's config.json:
// {"arch": "resnet50", "stages": 4|5, "stride_in_1x1": bool, "bn_eps": 1e-5,
//  "preprocess": "caffe"|"torch", "resize": "squash"|"center-crop", "image_size": 224,
//  "weights": "encoder.safetensors"}
#include <nlohmann/json.hpp>
#include <string>

#include "kernels/preprocess.h"
#include "model/image_loader.h"

namespace caption {

struct EncoderConfig {
  std::string arch = "resnet50";
  int stages = 5;              // 5: full network (2048-d); 4: stops after layer3 (1024-d, "C4")
  bool stride_in_1x1 = false;  // true: Caffe/Keras "v1" (stride on the first 1x1); false: torchvision v1.5
  float bn_eps = 1e-5f;
  Normalization preprocess = Normalization::Torch;
  ResizeMode resize = ResizeMode::CenterCrop;
  int image_size = 224;
  std::string weights = "encoder.safetensors";
  int64_t max_pixels = ImageOptions().max_pixels;  // a run-time setting (--max-pixels), not in config.json

  int feature_dim() const { return stages == 5 ? 2048 : 1024; }
  ImageOptions image_options() const { return {resize, image_size, max_pixels}; }
};

// Missing keys take the defaults above; wrong types or values are InputErrors naming the key.
EncoderConfig parse_encoder_config(const nlohmann::json& j, const std::string& path);
nlohmann::json encoder_config_json(const EncoderConfig& c);

}  // namespace caption
