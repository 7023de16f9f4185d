#pragma once
// ResNet50 image encoder in inference form: BatchNorm folded into each convolution's weights
// and bias at load, NHWC activations (NCHW on CUDA if asked), every convolution one conv2d call
// with its bias, ReLU and (for the last conv of a block) the residual fused. Output: global average pool of the
// last stage (layer4: 2048-d, or layer3 for the 4-stage "C4" trunk: 1024-d).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kernels/conv2d.h"
#include "model/encoder_config.h"
#include "runtime/context.h"
#include "runtime/host_buffer.h"
#include "runtime/tensor.h"

namespace caption {

// How the CUDA encoder runs (kernels/conv2d.h); the CPU always runs NHWC FP32.
struct EncoderOptions {
  bool tf32 = false;
  Layout layout = Layout::NHWC;
  ConvSearch search = ConvSearch::Heuristic;
  // bfloat16 weights and activations, FP32 accumulation and features (tensor cores); the
  // features move by about 0.5% of their largest value (tests/test_resnet50.cpp).
  bool bf16 = false;
};

// Every tensor of a torchvision ResNet50 trunk with `stages` stages (4: up to layer3), as
// (name, shape) in network order: conv weights [K,C,R,S], then their BN's four [K] tensors.
std::vector<std::pair<std::string, std::vector<int64_t>>> resnet50_tensor_shapes(int stages);

// Convolution weights [K, R, S, C] (NHWC) or [K, C, R, S] (NCHW) widened to C_to >= C input
// channels, the new ones zero: the same convolution of an input whose extra channels are zero.
template <class T>
std::vector<T> pad_input_channels(const T* w, int K, int R, int S, int C, int C_to, Layout layout) {
  std::vector<T> out(size_t(K) * R * S * C_to, T(0));
  for (int k = 0; k < K; ++k)
    for (int c = 0; c < C; ++c)
      for (int r = 0; r < R; ++r)
        for (int s = 0; s < S; ++s)
          out[layout_offset(layout, k, c, r, s, C_to, R, S)] = w[layout_offset(layout, k, c, r, s, C, R, S)];
  return out;
}

class ResNet50 {
 public:
  // Weights with torchvision's names and layouts (fc.* and num_batches_tracked ignored); a
  // missing or mis-shaped tensor is an InputError naming it and `source`.
  ResNet50(Context& ctx, const EncoderConfig& cfg, const std::map<std::string, Tensor>& weights,
           const std::string& source, const EncoderOptions& options = {});
  ~ResNet50();
  ResNet50(const ResNet50&) = delete;
  ResNet50& operator=(const ResNet50&) = delete;

  int feature_dim() const { return cfg_.feature_dim(); }
  const EncoderConfig& config() const { return cfg_; }
  Device device() const { return ctx_.device(); }
  // images: N RGB uint8 images [N, S, S, 3] (S = image_size) on the host;
  // features: [N, feature_dim] on the host. No batch may be queued (below).
  void encode(const uint8_t* images, int N, float* features);

  // encode() in two halves, so that the host prepares the next batch while this one runs.
  // submit() queues a batch and returns: on CUDA its upload runs on the copy stream, beside the
  // convolutions of the batch queued before it, and its features come back asynchronously.
  // collect() waits for the oldest queued batch and writes its features. At most two batches
  // are queued. `images` must stay untouched until that batch's collect() returns; on CUDA it
  // should be pinned (HostBuffer), or the upload cannot overlap anything. A submit that throws
  // (OutOfMemory, say) queues nothing and no longer reads `images`. On the CPU, submit() does
  // all the work.
  void submit(const uint8_t* images, int N);
  void collect(float* features);
  int queued() const { return queued_; }
  // Waits for the queued batches and drops them: after an error, before their images are
  // freed. Errors while waiting are ignored (the one being handled matters).
  void discard() noexcept;

 private:
  struct Conv {
    int C, K, R, S, stride, pad;
    size_t w, b;     // offsets into the parameter buffer (params_, or params_bf16_ with bf16)
    size_t b32 = 0;  // with bf16: the bias's offset in params_, which then holds only biases
  };
  struct Block {
    Conv c1, c2, c3;
    bool down;
    Conv ds;
  };
  // f(conv) for every convolution of the network in order: conv1, then each block's.
  template <class F>
  void for_each_conv(F&& f) {
    f(conv1_);
    for (Block& b : blocks_) {
      for (Conv* c : {&b.c1, &b.c2, &b.c3}) f(*c);
      if (b.down) f(b.ds);
    }
  }
  void pack_for_cpu(std::vector<float>& flat);  // replaces flat, moves the offsets
  Conv fold(const std::map<std::string, Tensor>& weights, const std::string& conv, const std::string& bn, int stride,
            int pad, std::vector<float>& flat, const std::string& source);
  // One convolution in FP32, or in bfloat16 (uint16_t data).
  void run_conv(const Conv& c, int N, int H, int W, const float* x, const float* residual, bool relu, float* y,
                int* P, int* Q);
  void run_conv(const Conv& c, int N, int H, int W, const uint16_t* x, const uint16_t* residual, bool relu,
                uint16_t* y, int* P, int* Q);
  // Inputs and outputs of one queued batch. Two of them, so that the upload of one batch
  // does not overwrite the pixels the other's convolutions still read.
  struct Slot {
    explicit Slot(Device d) : uploaded(d), consumed(d), done(d) {}
    int capacity = 0;             // images the buffers hold
    int count = 0;                // images of the queued batch
    PoolBuffer<uint8_t> pixels;   // device; written on the copy stream
    HostBuffer features;          // pinned on CUDA; written by the download
    Event uploaded;               // copy stream: pixels are on the device
    Event consumed;               // compute stream: nothing queued reads (or used) pixels' memory
    Event done;                   // compute stream: features are on the host
  };
  static constexpr int kSlots = 2;

  void ensure_buffers(int images, int features);
  void grow_buffers(MemoryPool& pool, Stream st, int images, int features);
  // Preprocessing, the convolutions and the pooling of N images already on the device, into
  // features [N, feature_dim]; `preprocessed` is recorded once the pixels have been read.
  // Activations are T: float, or uint16_t for bfloat16.
  template <class T>
  void run_network(const uint8_t* pixels, int N, float* features, Event* preprocessed);
  void ensure_slot(Slot& slot, int N);

  Context& ctx_;
  EncoderConfig cfg_;
  EncoderOptions options_;  // layout NHWC on the CPU
  Conv conv1_;
  // bfloat16: conv1 over the input padded to 8 channels (kernels/preprocess.h), its weights
  // zero-padded to match after the other tensors in params_bf16_.
  static constexpr int kBf16InputChannels = 8;
  Conv conv1_bf16_;
  std::vector<Block> blocks_;
  PoolBuffer<float> params_;  // FP32 tensors; with bf16 only the biases (Conv::b32)
  PoolBuffer<uint16_t> params_bf16_;  // the same tensors at the same offsets, in bfloat16 (bf16 only)
  static constexpr int kCpuPiece = 16;  // images per network run on the CPU (submit)
  int capacity_ = 0;          // images the activation buffers hold
  int feature_capacity_ = 0;  // images features_ holds
  PoolBuffer<float> buf_[5];
  PoolBuffer<float> features_;
  Slot slots_[kSlots];
  int head_ = 0;    // slot of the oldest queued batch
  int queued_ = 0;  // batches submitted and not collected
};

}  // namespace caption
