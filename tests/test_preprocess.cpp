#include "kernels/preprocess.h"

#include <algorithm>
#include <cstdint>
#include <random>

#include "tests/test_util.h"

namespace caption {
namespace {

using test::all_close;

// Two pixels, (R,G,B) = (10,200,255) and (0,128,64), normalised by hand.
TEST(Preprocess, CaffeHandValues) {
  const std::vector<uint8_t> img = {10, 200, 255, 0, 128, 64};
  std::vector<float> out(6);
  cpu::preprocess_images(img.data(), 1, 1, 2, Normalization::Caffe, out.data());
  // BGR order: B - 103.939, G - 116.779, R - 123.68.
  EXPECT_TRUE(all_close(out, {151.061f, 83.221f, -113.68f, -39.939f, 11.221f, -123.68f}, 0.f, 1e-4f));
}

TEST(Preprocess, TorchHandValues) {
  const std::vector<uint8_t> img = {10, 200, 255, 0, 128, 64};
  std::vector<float> out(6);
  cpu::preprocess_images(img.data(), 1, 1, 2, Normalization::Torch, out.data());
  // RGB order: (v/255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225].
  EXPECT_TRUE(all_close(out, {-1.946656f, 1.465686f, 2.640000f, -2.117904f, 0.205182f, -0.688976f}, 0.f, 2e-6f));
}

// Same constants and operations on both backends: equal bits, on an odd-sized batch, in both
// layouts, and in bfloat16 the CPU's values rounded.
TEST(Preprocess, CudaMatchesCpuExactly) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  const int N = 2, H = 3, W = 5;
  std::mt19937 rng(1);
  std::vector<uint8_t> img(size_t(N) * H * W * 3);
  for (auto& v : img) v = uint8_t(rng() & 255);
  img[0] = 0, img[1] = 255;  // both ends of the range
  auto dimg = test::to_device(gpu, img);
  for (Normalization norm : {Normalization::Caffe, Normalization::Torch}) {
    std::vector<float> ref(img.size());
    cpu::preprocess_images(img.data(), N, H, W, norm, ref.data());
    PoolBuffer<float> dout(gpu.pool(), img.size(), gpu.exec().stream);
    preprocess_images(gpu.exec(), dimg.data(), N, H, W, norm, dout.data());
    EXPECT_EQ(test::to_host(gpu, dout), ref);
    preprocess_images(gpu.exec(), dimg.data(), N, H, W, norm, dout.data(), Layout::NCHW);
    EXPECT_EQ(test::nchw_to_nhwc(test::to_host(gpu, dout), N, 3, H, W), ref) << "NCHW";
    // bfloat16, in 3 channels and in 8 (five zeros after the image's three).
    std::vector<uint16_t> ref8(img.size() / 3 * 8, 0);
    const auto ref16 = test::to_bf16(ref);
    for (size_t px = 0; px < img.size() / 3; ++px) std::copy_n(ref16.begin() + 3 * px, 3, ref8.begin() + 8 * px);
    PoolBuffer<uint16_t> d16(gpu.pool(), ref8.size(), gpu.exec().stream);
    for (int channels : {3, 8}) {
      const auto& want = channels == 3 ? ref16 : ref8;
      preprocess_images(gpu.exec(), dimg.data(), N, H, W, norm, d16.data(), Layout::NHWC, channels);
      auto got = test::to_host(gpu, d16);
      got.resize(want.size());
      EXPECT_EQ(got, want) << "bfloat16, channels " << channels;
      preprocess_images(gpu.exec(), dimg.data(), N, H, W, norm, d16.data(), Layout::NCHW, channels);
      got = test::to_host(gpu, d16);
      got.resize(want.size());
      EXPECT_EQ(test::nchw_to_nhwc(got, N, channels, H, W), want) << "bfloat16 NCHW, channels " << channels;
    }
  }
}

}  // namespace
}  // namespace caption
