#pragma once
// Keras ResNet50 weights (resnet50_weights_tf_dim_ordering_tf_kernels[_notop].h5, HDF5) to
// torchvision names and layouts: `conv1_conv/kernel:0` (HWIO) -> `conv1.weight` (OIHW),
// `conv2_block1_1_conv` -> `layer1.0.conv1`, `conv2_block1_0_conv` -> `layer1.0.downsample.0`,
// BN gamma/beta/moving_mean/moving_variance -> weight/bias/running_mean/running_var. Keras
// convolutions have biases; each is folded into the following BN's running_mean (mean - b),
// so the result is exact for a bias-free torchvision conv. Keras' BN eps is 1.001e-5.
#include <map>
#include <string>

#include "runtime/tensor.h"

namespace caption {

struct KerasImport {
  std::map<std::string, Tensor> tensors;  // torchvision names
  int stages = 0;                         // 4 or 5: the deepest complete stage found
};

KerasImport import_keras_resnet50(const std::string& h5_path);  // InputError naming file and dataset

}  // namespace caption
