#include "model/resnet50.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "kernels/pool.h"
#include "kernels/preprocess.h"
#include "model/safetensors.h"
#include "runtime/error.h"

namespace caption {
namespace {

constexpr int kBlocks[4] = {3, 4, 6, 3};
constexpr int kWidth[4] = {64, 128, 256, 512};  // bottleneck width; the block outputs 4x

}  // namespace

std::vector<std::pair<std::string, std::vector<int64_t>>> resnet50_tensor_shapes(int stages) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  auto conv_bn = [&](const std::string& conv, const std::string& bn, int64_t K, int64_t C, int64_t R) {
    out.push_back({conv + ".weight", {K, C, R, R}});
    for (auto p : {".weight", ".bias", ".running_mean", ".running_var"}) out.push_back({bn + p, {K}});
  };
  conv_bn("conv1", "bn1", 64, 3, 7);
  int in = 64;
  for (int stage = 0; stage < stages - 1; ++stage)
    for (int b = 0; b < kBlocks[stage]; ++b) {
      const std::string p = "layer" + std::to_string(stage + 1) + "." + std::to_string(b) + ".";
      const int width = kWidth[stage];
      conv_bn(p + "conv1", p + "bn1", width, in, 1);
      conv_bn(p + "conv2", p + "bn2", width, width, 3);
      conv_bn(p + "conv3", p + "bn3", 4 * width, width, 1);
      if (b == 0) conv_bn(p + "downsample.0", p + "downsample.1", 4 * width, in, 1);
      in = 4 * width;
    }
  return out;
}

// conv weight [K,C,R,S] (OIHW) and BN (gamma, beta, mean, var) become weights scaled by
// gamma/sqrt(var+eps), KRSC for NHWC and KCRS for NCHW, and a bias beta - mean*gamma/sqrt(var+eps),
// folded in double.
ResNet50::Conv ResNet50::fold(const std::map<std::string, Tensor>& weights, const std::string& conv,
                              const std::string& bn, int stride, int pad, std::vector<float>& flat,
                              const std::string& source) {
  auto wit = weights.find(conv + ".weight");
  if (wit == weights.end()) throw InputError(source, "missing tensor '" + conv + ".weight'");
  const auto& shape = wit->second.shape;
  if (shape.size() != 4) throw InputError(source, "tensor '" + conv + ".weight' is not 4-D");
  Conv c{int(shape[1]), int(shape[0]), int(shape[2]), int(shape[3]), stride, pad, 0, 0};
  const Tensor& w = wit->second;
  const Tensor& g = find_tensor(weights, bn + ".weight", {c.K}, source);
  const Tensor& beta = find_tensor(weights, bn + ".bias", {c.K}, source);
  const Tensor& mean = find_tensor(weights, bn + ".running_mean", {c.K}, source);
  const Tensor& var = find_tensor(weights, bn + ".running_var", {c.K}, source);
  c.w = flat.size();
  flat.resize(flat.size() + size_t(c.K) * c.R * c.S * c.C);
  c.b = flat.size();
  flat.resize(flat.size() + c.K);
  flat.resize((flat.size() + 63) / 64 * 64);  // keep every tensor 256-byte aligned
  for (int k = 0; k < c.K; ++k) {
    double scale = g.data[k] / std::sqrt(double(var.data[k]) + cfg_.bn_eps);
    flat[c.b + k] = float(beta.data[k] - mean.data[k] * scale);
    for (int ch = 0; ch < c.C; ++ch)
      for (int r = 0; r < c.R; ++r)
        for (int s = 0; s < c.S; ++s)
          flat[c.w + layout_offset(options_.layout, k, ch, r, s, c.C, c.R, c.S)] =
              float(w.data[layout_offset(Layout::NCHW, k, ch, r, s, c.C, c.R, c.S)] * scale);
  }
  return c;
}

ResNet50::ResNet50(Context& ctx, const EncoderConfig& cfg, const std::map<std::string, Tensor>& weights,
                   const std::string& source, const EncoderOptions& options)
    : ctx_(ctx), cfg_(cfg), options_(options), slots_{Slot(ctx.device()), Slot(ctx.device())} {
  if (ctx.device() == Device::CPU) options_ = EncoderOptions{};
  std::vector<float> flat;
  conv1_ = fold(weights, "conv1", "bn1", 2, 3, flat, source);
  if (conv1_.C != 3 || conv1_.K != 64 || conv1_.R != 7 || conv1_.S != 7)
    throw InputError(source, "conv1.weight must be [64,3,7,7]");
  int in = 64;
  for (int stage = 0; stage < cfg.stages - 1; ++stage)
    for (int b = 0; b < kBlocks[stage]; ++b) {
      const std::string p = "layer" + std::to_string(stage + 1) + "." + std::to_string(b) + ".";
      const int stride = stage > 0 && b == 0 ? 2 : 1;
      Block blk;
      blk.c1 = fold(weights, p + "conv1", p + "bn1", cfg.stride_in_1x1 ? stride : 1, 0, flat, source);
      blk.c2 = fold(weights, p + "conv2", p + "bn2", cfg.stride_in_1x1 ? 1 : stride, 1, flat, source);
      blk.c3 = fold(weights, p + "conv3", p + "bn3", 1, 0, flat, source);
      const int width = kWidth[stage];
      for (auto [c, name, C, K, R] : {std::tuple{&blk.c1, "conv1", in, width, 1}, {&blk.c2, "conv2", width, width, 3},
                                      {&blk.c3, "conv3", width, 4 * width, 1}})
        if (c->C != C || c->K != K || c->R != R || c->S != R)
          throw InputError(source, "tensor '" + p + name + ".weight' does not have ResNet50's shape");
      blk.down = b == 0;
      if (blk.down) {
        blk.ds = fold(weights, p + "downsample.0", p + "downsample.1", stride, 0, flat, source);
        if (blk.ds.C != in || blk.ds.K != 4 * width || blk.ds.R != 1)
          throw InputError(source, "tensor '" + p + "downsample.0.weight' does not have ResNet50's shape");
      }
      blocks_.push_back(blk);
      in = 4 * width;
    }
  if (ctx.device() == Device::CPU) pack_for_cpu(flat);
  auto upload_fp32 = [&](const std::vector<float>& host) {
    params_ = PoolBuffer<float>(ctx.pool(), host.size(), ctx.exec().stream);
    ctx.upload(params_.data(), host.data(), host.size() * sizeof(float));
  };
  if (!options_.bf16) {
    upload_fp32(flat);
  } else {
    // The bfloat16 convolutions' FP32 epilogue reads the biases, and nothing else of the FP32
    // tensors: they go up alone (not the FP32 weights: about 100 MB for the whole network).
    std::vector<float> biases;
    auto keep_bias = [&](Conv& c) {
      c.b32 = biases.size();
      biases.insert(biases.end(), flat.begin() + c.b, flat.begin() + c.b + c.K);
    };
    for_each_conv(keep_bias);
    upload_fp32(biases);
    std::vector<uint16_t> narrow(flat.size());
    std::transform(flat.begin(), flat.end(), narrow.begin(), float_to_bfloat16);
    const Conv& c = conv1_;
    const auto padded = pad_input_channels(narrow.data() + c.w, c.K, c.R, c.S, c.C, kBf16InputChannels, options_.layout);
    conv1_bf16_ = c;
    conv1_bf16_.C = kBf16InputChannels;
    conv1_bf16_.w = narrow.size();
    narrow.insert(narrow.end(), padded.begin(), padded.end());
    params_bf16_ = PoolBuffer<uint16_t>(ctx.pool(), narrow.size(), ctx.exec().stream);
    ctx.upload(params_bf16_.data(), narrow.data(), narrow.size() * sizeof(uint16_t));
  }
}

// The CPU kernel reads weights in its own order (kernels/conv2d.h), packed here once: the
// parameters are laid out anew, each convolution's packed weights (larger than the plain ones for
// the Winograd 3x3s) and then its bias.
void ResNet50::pack_for_cpu(std::vector<float>& flat) {
  std::vector<float> out;
  auto pack = [&](Conv& c) {
    const ConvShape s{1, c.R, c.S, c.C, c.K, c.R, c.S, c.stride, c.pad};
    const size_t w = out.size();
    out.resize(w + cpu::conv_packed_weights_size(s));
    cpu::pack_conv_weights(s, flat.data() + c.w, out.data() + w);
    const size_t b = out.size();
    out.insert(out.end(), flat.begin() + c.b, flat.begin() + c.b + c.K);
    out.resize((out.size() + 63) / 64 * 64);  // 256-byte aligned, as fold leaves them
    c.w = w;
    c.b = b;
  };
  for_each_conv(pack);
  flat = std::move(out);
}

// Queued copies may still read and write the slots' host buffers.
ResNet50::~ResNet50() { discard(); }

void ResNet50::ensure_buffers(int images, int features) {
  if (images <= capacity_ && features <= feature_capacity_) return;
  MemoryPool& pool = ctx_.pool();
  Stream st = ctx_.exec().stream;
  try {
    grow_buffers(pool, st, images, features);
  } catch (const OutOfMemory&) {
    // Hold nothing after a failure, so that a smaller retry (run_in_pieces) has all the room.
    for (auto& b : buf_) b = PoolBuffer<float>();
    features_ = PoolBuffer<float>();
    capacity_ = feature_capacity_ = 0;
    throw;
  }
}

void ResNet50::grow_buffers(MemoryPool& pool, Stream st, int images, int features) {
  if (images > capacity_) {
    // Every activation of a bottleneck ResNet holds at most 16 floats per input pixel
    // (conv1: (S/2)^2 * 64, layer1: (S/4)^2 * 256).
    const size_t S = cfg_.image_size + 1;
    const size_t per_image = S * S * 16;
    capacity_ = 0;
    for (auto& b : buf_) {
      b = PoolBuffer<float>();
      b = PoolBuffer<float>(pool, images * per_image, st);
    }
    capacity_ = images;
  }
  if (features > feature_capacity_) {
    feature_capacity_ = 0;
    features_ = PoolBuffer<float>();
    features_ = PoolBuffer<float>(pool, size_t(features) * feature_dim(), st);
    feature_capacity_ = features;
  }
}

// The slot is not queued, so nothing will read its buffers again. Its pixels come from the
// compute stream's arena, which may hand out memory that queued kernels still use: the copy
// stream waits for `consumed`, recorded after them, before it writes there.
void ResNet50::ensure_slot(Slot& slot, int N) {
  if (N <= slot.capacity) return;
  const size_t S = cfg_.image_size;
  slot.capacity = 0;
  slot.pixels = PoolBuffer<uint8_t>();
  slot.features = HostBuffer();
  slot.pixels = PoolBuffer<uint8_t>(ctx_.pool(), size_t(N) * S * S * 3, ctx_.exec().stream);
  slot.features = HostBuffer(ctx_.device(), size_t(N) * feature_dim() * sizeof(float));
  slot.consumed.record(ctx_.exec().stream);
  slot.capacity = N;
}

void ResNet50::run_conv(const Conv& c, int N, int H, int W, const float* x, const float* residual, bool relu,
                        float* y, int* P, int* Q) {
  ConvShape s{N, H, W, c.C, c.K, c.R, c.S, c.stride, c.pad};
  const float* base = params_.data();
  const bool cpu = ctx_.device() == Device::CPU;  // packed weights (pack_for_cpu)
  ConvParams p{cpu ? nullptr : base + c.w, base + c.b, residual, relu, options_.tf32, options_.layout, options_.search};
  if (cpu) p.w_packed = base + c.w;
  conv2d(ctx_.exec(), s, x, p, y);
  *P = s.P();
  *Q = s.Q();
}

void ResNet50::run_conv(const Conv& c, int N, int H, int W, const uint16_t* x, const uint16_t* residual, bool relu,
                        uint16_t* y, int* P, int* Q) {
  ConvShape s{N, H, W, c.C, c.K, c.R, c.S, c.stride, c.pad};
  const uint16_t* narrow = params_bf16_.data();
  const ConvParamsBf16 p{narrow + c.w, params_.data() + c.b32, narrow + c.b, residual, relu, options_.layout,
                         options_.search};
  conv2d(ctx_.exec(), s, x, p, y);
  *P = s.P();
  *Q = s.Q();
}

void ResNet50::encode(const uint8_t* images, int N, float* features) {
  if (queued_) throw std::logic_error("ResNet50::encode with batches queued: collect them first");
  submit(images, N);
  collect(features);
}

void ResNet50::submit(const uint8_t* images, int N) {
  if (queued_ == kSlots) throw std::logic_error("ResNet50::submit: two batches are queued already");
  Slot& slot = slots_[(head_ + queued_) % kSlots];
  const Exec ex = ctx_.exec();
  const int S = cfg_.image_size;
  // The CPU runs a batch in pieces of 16 images, so that its activation buffers stay at 5 x 52
  // MB whatever the batch (256 images at once would take 4 GB). On CUDA the whole batch is one
  // piece.
  const int piece = ctx_.device() == Device::CPU ? std::min(N, kCpuPiece) : N;
  try {
    ensure_buffers(piece, N);
    ensure_slot(slot, N);
    // Copy stream: wait until the slot's last reader is done, upload. Compute stream: wait for
    // the upload, run the network, and say after the last preprocessing that the pixels may
    // be overwritten.
    slot.consumed.wait(ctx_.copy_stream());
    ctx_.upload_async(slot.pixels.data(), images, size_t(N) * S * S * 3);
    slot.uploaded.record(ctx_.copy_stream());
    slot.uploaded.wait(ex.stream);
    for (int first = 0; first < N; first += piece) {
      const int n = std::min(piece, N - first);
      const uint8_t* pixels = slot.pixels.data() + size_t(first) * S * S * 3;
      float* features = features_.data() + size_t(first) * feature_dim();
      Event* consumed = first + n == N ? &slot.consumed : nullptr;
      if (options_.bf16) run_network<uint16_t>(pixels, n, features, consumed);
      else run_network<float>(pixels, n, features, consumed);
    }
    // features_ is rewritten only by a later batch's kernels, queued after this download.
    ctx_.download_async(slot.features.data<float>(), features_.data(), size_t(N) * feature_dim() * sizeof(float));
    slot.done.record(ex.stream);
  } catch (...) {
    ctx_.synchronize();  // the upload may have started: let it end before `images` is reused
    throw;
  }
  slot.count = N;
  ++queued_;
}

// bfloat16 activations fit in the FP32 buffers (the input too, padded to 8 channels: 16 bytes a
// pixel of the 64 those hold).
template <class T>
void ResNet50::run_network(const uint8_t* pixels, int N, float* features, Event* preprocessed) {
  const Exec ex = ctx_.exec();
  const int S = cfg_.image_size;
  T* x = reinterpret_cast<T*>(buf_[0].data());
  T* t1 = reinterpret_cast<T*>(buf_[1].data());
  T* t2 = reinterpret_cast<T*>(buf_[2].data());
  T* ds = reinterpret_cast<T*>(buf_[3].data());
  T* out = reinterpret_cast<T*>(buf_[4].data());
  constexpr bool kBf16 = std::is_same_v<T, uint16_t>;
  if constexpr (kBf16) preprocess_images(ex, pixels, N, S, S, cfg_.preprocess, out, options_.layout, kBf16InputChannels);
  else preprocess_images(ex, pixels, N, S, S, cfg_.preprocess, out, options_.layout);
  if (preprocessed) preprocessed->record(ex.stream);
  int H = S, W = S, P, Q;
  run_conv(kBf16 ? conv1_bf16_ : conv1_, N, H, W, out, nullptr, true, t1, &P, &Q);
  PoolShape ps{N, P, Q, 64, 3, 2, 1, options_.layout};
  maxpool2d(ex, ps, t1, x);
  H = ps.P(), W = ps.Q();
  int C = 64;
  for (const Block& b : blocks_) {
    int H1, W1, H2, W2;
    run_conv(b.c1, N, H, W, x, nullptr, true, t1, &H1, &W1);
    run_conv(b.c2, N, H1, W1, t1, nullptr, true, t2, &H2, &W2);
    const T* identity = x;
    if (b.down) {
      int Hd, Wd;
      run_conv(b.ds, N, H, W, x, nullptr, false, ds, &Hd, &Wd);
      identity = ds;
    }
    run_conv(b.c3, N, H2, W2, t2, identity, true, out, &H, &W);
    std::swap(x, out);
    C = b.c3.K;
  }
  global_avgpool(ex, N, H, W, C, x, features, options_.layout);
}

void ResNet50::collect(float* features) {
  if (!queued_) throw std::logic_error("ResNet50::collect: no batch is queued");
  Slot& slot = slots_[head_];
  slot.done.synchronize();
  std::memcpy(features, slot.features.data<float>(), size_t(slot.count) * feature_dim() * sizeof(float));
  head_ = (head_ + 1) % kSlots;
  // Once nothing is queued, the next batch takes the first slot again: encode() alone never
  // allocates the second.
  if (--queued_ == 0) head_ = 0;
}

void ResNet50::discard() noexcept {
  try {
    ctx_.synchronize();
  } catch (...) {
  }
  head_ = 0;
  queued_ = 0;
}

}  // namespace caption
