#include "kernels/conv2d.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>

#if CAPTION_HAS_CUDA
#include <cudnn.h>

#include "kernels/conv2d_gemm.h"
#endif

#include "kernels/parallel.h"
#include "tests/test_util.h"

namespace caption {
namespace {

using test::all_close;
using test::nchw_to_nhwc;
using test::nhwc_to_nchw;
using test::random_vector;

// Direct convolution with double accumulation: the oracle for both backends.
std::vector<float> naive_conv(const ConvShape& s, const std::vector<float>& x, const std::vector<float>& w,
                              const std::vector<float>& bias, const std::vector<float>* res, bool relu) {
  const int P = s.P(), Q = s.Q();
  std::vector<float> y(size_t(s.N) * P * Q * s.K);
  for (int n = 0; n < s.N; ++n)
    for (int p = 0; p < P; ++p)
      for (int q = 0; q < Q; ++q)
        for (int k = 0; k < s.K; ++k) {
          double acc = bias[k];
          for (int r = 0; r < s.R; ++r)
            for (int t = 0; t < s.S; ++t) {
              const int h = p * s.stride - s.pad + r, wi = q * s.stride - s.pad + t;
              if (h < 0 || h >= s.H || wi < 0 || wi >= s.W) continue;
              for (int c = 0; c < s.C; ++c)
                acc += double(x[((size_t(n) * s.H + h) * s.W + wi) * s.C + c]) *
                       w[((size_t(k) * s.R + r) * s.S + t) * s.C + c];
            }
          const size_t i = ((size_t(n) * P + p) * Q + q) * s.K + k;
          if (res) acc += (*res)[i];
          y[i] = float(relu ? std::max(acc, 0.0) : acc);
        }
  return y;
}

// |a - ref| <= tol * max|ref| everywhere: the error of a long float dot product scales with the
// magnitude of its terms, not of its (possibly cancelled) result.
::testing::AssertionResult close_to_scale(const std::vector<float>& a, const std::vector<float>& ref, float tol) {
  float scale = 0;
  for (float v : ref) scale = std::max(scale, std::fabs(v));
  return all_close(a, ref, 0.f, tol * std::max(scale, 1e-30f));
}

struct Case {
  ConvShape s;
  bool residual, relu;
};

// Odd sizes, every kernel size / stride / padding combination the encoder uses and some it does not,
// each epilogue variant; pixel counts that leave the CPU kernel's 6-pixel tiles a remainder, and
// channel counts below, at and across its 64-channel blocks. The 3x3 stride-1 "same" cases take
// the CPU's Winograd path: odd sizes leave 2x2 output tiles half outside the image, and input
// channels past a whole vector leave a tail.
std::vector<Case> odd_cases() {
  return {
      {{1, 7, 9, 3, 4, 3, 3, 1, 1}, false, true},   // 3x3 same
      {{2, 7, 9, 5, 7, 3, 3, 2, 1}, true, true},    // 3x3 stride 2 with residual
      {{2, 9, 7, 3, 4, 7, 7, 2, 3}, false, true},   // conv1-like 7x7/2 pad 3
      {{1, 7, 9, 5, 7, 1, 1, 1, 0}, true, false},   // 1x1 direct, residual, no ReLU
      {{2, 7, 9, 5, 4, 1, 1, 1, 0}, false, false},  // 1x1 direct, bias only
      {{2, 7, 9, 5, 7, 1, 1, 2, 0}, false, false},  // 1x1 strided downsample
      {{1, 5, 6, 3, 4, 1, 1, 1, 1}, true, true},    // 1x1 padded: all-zero border pixels
      {{2, 7, 9, 3, 7, 3, 3, 1, 0}, true, false},   // 3x3 valid
      {{1, 3, 3, 5, 4, 7, 7, 1, 3}, false, true},   // window larger than the image
      {{2, 37, 37, 5, 7, 3, 3, 1, 1}, true, true},  // 2738 output pixels: many work items, across images
      {{1, 5, 7, 9, 64, 3, 3, 1, 1}, true, true},   // one whole channel block
      {{2, 6, 5, 11, 70, 1, 1, 1, 0}, true, true},  // a block and 6 channels
      {{1, 4, 5, 6, 1, 3, 3, 2, 1}, false, true},   // one output channel
      {{2, 6, 9, 37, 70, 3, 3, 1, 1}, true, false}, // Winograd: channel tails in and out
  };
}

struct Inputs {
  std::vector<float> x, w, bias, res;
};

Inputs make_inputs(const ConvShape& s, uint32_t seed) {
  Inputs in;
  in.x = random_vector(size_t(s.N) * s.H * s.W * s.C, seed);
  in.w = random_vector(size_t(s.K) * s.R * s.S * s.C, seed + 1);
  in.bias = random_vector(s.K, seed + 2);
  in.res = random_vector(size_t(s.N) * s.P() * s.Q() * s.K, seed + 3);
  return in;
}

std::vector<float> run_cpu(const ConvShape& s, const Inputs& in, bool residual, bool relu) {
  std::vector<float> y(size_t(s.N) * s.P() * s.Q() * s.K, std::numeric_limits<float>::quiet_NaN());
  ConvParams p{in.w.data(), in.bias.data(), residual ? in.res.data() : nullptr, relu};
  cpu::conv2d(s, in.x.data(), p, y.data());
  return y;
}

// The CUDA variants every CUDA test runs: both layouts, both ways of choosing cuDNN's algorithm,
// and the cuBLASLt matmul for the NHWC shapes (cuDNN's heuristic choice for the NCHW ones).
struct Variant {
  Layout layout;
  ConvSearch search;
};
const Variant kVariants[] = {{Layout::NHWC, ConvSearch::Heuristic}, {Layout::NHWC, ConvSearch::Timed},
                             {Layout::NHWC, ConvSearch::Matmul},    {Layout::NCHW, ConvSearch::Heuristic},
                             {Layout::NCHW, ConvSearch::Timed}};

std::string name(const Variant& v) { return std::string(layout_name(v.layout)) + " " + search_name(v.search); }

// The CUDA runs take inputs in NHWC like the CPU's and return NHWC; NCHW runs get theirs
// transposed here, and their output transposed back.
Inputs in_layout(const ConvShape& s, const Inputs& in, Layout layout) {
  if (layout == Layout::NHWC) return in;
  return {nhwc_to_nchw(in.x, s.N, s.H, s.W, s.C), nhwc_to_nchw(in.w, s.K, s.R, s.S, s.C), in.bias,
          nhwc_to_nchw(in.res, s.N, s.P(), s.Q(), s.K)};
}
template <class T>
std::vector<T> out_of_layout(const ConvShape& s, const std::vector<T>& y, Layout layout) {
  return layout == Layout::NHWC ? y : nchw_to_nhwc(y, s.N, s.K, s.P(), s.Q());
}

std::vector<float> run_cuda(Context& gpu, const ConvShape& s, const Inputs& nhwc, bool residual, bool relu,
                            const Variant& v, bool tf32 = false) {
  const Inputs in = in_layout(s, nhwc, v.layout);
  const int P = s.P(), Q = s.Q();
  auto dx = test::to_device(gpu, in.x), dw = test::to_device(gpu, in.w), dr = test::to_device(gpu, in.res);
  auto db = test::to_device(gpu, in.bias);
  // NaN-filled output: without a residual cuDNN gets y as its z input scaled by 0, which must not leak.
  auto dy = test::to_device(gpu,
                            std::vector<float>(size_t(s.N) * P * Q * s.K, std::numeric_limits<float>::quiet_NaN()));
  ConvParams p{dw.data(), db.data(), residual ? dr.data() : nullptr, relu, tf32, v.layout, v.search};
  conv2d(gpu.exec(), s, dx.data(), p, dy.data());
  return out_of_layout(s, test::to_host(gpu, dy), v.layout);
}

TEST(Conv2d, CpuMatchesNaive) {
  uint32_t seed = 10;
  for (const Case& c : odd_cases()) {
    const Inputs in = make_inputs(c.s, seed += 10);
    const auto ref = naive_conv(c.s, in.x, in.w, in.bias, c.residual ? &in.res : nullptr, c.relu);
    EXPECT_TRUE(close_to_scale(run_cpu(c.s, in, c.residual, c.relu), ref, 1e-5f))
        << "R=" << c.s.R << " stride=" << c.s.stride << " pad=" << c.s.pad << " N=" << c.s.N << " H=" << c.s.H;
  }
}

// Each output is the same float operations wherever its pixel falls: weights packed once or per
// call, an image alone or in a batch, one thread or several give the same bits.
TEST(Conv2d, CpuBitsIndependentOfPackingBatchAndThreads) {
  const ConvShape s{3, 11, 13, 19, 70, 3, 3, 1, 1};
  const Inputs in = make_inputs(s, 7);
  const auto y = run_cpu(s, in, true, true);
  EXPECT_TRUE(close_to_scale(y, naive_conv(s, in.x, in.w, in.bias, &in.res, true), 1e-5f));

  std::vector<float> packed(cpu::conv_packed_weights_size(s)), y_packed(y.size());
  cpu::pack_conv_weights(s, in.w.data(), packed.data());
  ConvParams p{nullptr, in.bias.data(), in.res.data(), true};
  p.w_packed = packed.data();
  cpu::conv2d(s, in.x.data(), p, y_packed.data());
  EXPECT_EQ(y_packed, y);

  const ConvShape one{1, s.H, s.W, s.C, s.K, s.R, s.S, s.stride, s.pad};
  const size_t x_image = size_t(s.H) * s.W * s.C, y_image = size_t(s.P()) * s.Q() * s.K;
  std::vector<float> y_alone(y.size());
  for (int n = 0; n < s.N; ++n) {
    const ConvParams pn{in.w.data(), in.bias.data(), in.res.data() + n * y_image, true};
    cpu::conv2d(one, in.x.data() + n * x_image, pn, y_alone.data() + n * y_image);
  }
  EXPECT_EQ(y_alone, y);

  cpu::set_num_threads(1);
  const auto y_serial = run_cpu(s, in, true, true);
  cpu::set_num_threads(0);
  EXPECT_EQ(y_serial, y);
}

// tests/golden/make_conv_golden.py: torch.nn.functional.conv2d in NCHW / OIHW, transposed here.
TEST(Conv2d, CpuMatchesPyTorchGolden) {
  std::ifstream f(std::string(CAPTION_TEST_DATA) + "/golden/conv_small.json");
  ASSERT_TRUE(f) << "missing golden file";
  const auto g = nlohmann::json::parse(f);
  auto i = [&](const char* key) { return g[key].get<int>(); };
  const ConvShape s{i("N"), i("H"), i("W"), i("C"), i("K"), i("R"), i("S"), i("stride"), i("pad")};
  ASSERT_EQ(s.P(), i("P"));
  ASSERT_EQ(s.Q(), i("Q"));
  const auto x_nchw = g["x"].get<std::vector<float>>(), w_oihw = g["w"].get<std::vector<float>>();
  const auto r_nchw = g["residual"].get<std::vector<float>>(), y_nchw = g["y"].get<std::vector<float>>();
  const auto bias = g["bias"].get<std::vector<float>>();
  const int P = s.P(), Q = s.Q();
  const auto x = nchw_to_nhwc(x_nchw, s.N, s.C, s.H, s.W);
  const auto w = nchw_to_nhwc(w_oihw, s.K, s.C, s.R, s.S);  // OIHW -> OHWI is the same permutation
  const auto res = nchw_to_nhwc(r_nchw, s.N, s.K, P, Q), expected = nchw_to_nhwc(y_nchw, s.N, s.K, P, Q);
  std::vector<float> y(expected.size());
  cpu::conv2d(s, x.data(), ConvParams{w.data(), bias.data(), res.data(), true}, y.data());
  EXPECT_TRUE(all_close(y, expected, 1e-5f, 1e-5f));
  EXPECT_GT(std::count(expected.begin(), expected.end(), 0.f), 0) << "ReLU never clamps: weak fixture";
}

TEST(Conv2d, CudaMatchesCpuOddShapes) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  uint32_t seed = 100;
  for (const Case& c : odd_cases()) {
    const Inputs in = make_inputs(c.s, seed += 10);
    const auto ref = run_cpu(c.s, in, c.residual, c.relu);
    for (const Variant& v : kVariants)
      EXPECT_TRUE(close_to_scale(run_cuda(gpu, c.s, in, c.residual, c.relu, v), ref, 1e-4f))
          << name(v) << " R=" << c.s.R << " stride=" << c.s.stride << " pad=" << c.s.pad << " N=" << c.s.N
          << " H=" << c.s.H;
  }
}

// Real ResNet50 layers at batch 2: conv1, a stage-3 3x3, the strided 1x1 downsample (Keras puts the
// stride on the 1x1), a bottleneck's closing 1x1 with residual.
TEST(Conv2d, CudaMatchesCpuResNetShapes) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  const std::vector<Case> cases = {
      {{2, 224, 224, 3, 64, 7, 7, 2, 3}, false, true},
      {{2, 14, 14, 256, 256, 3, 3, 1, 1}, false, true},
      {{2, 56, 56, 256, 512, 1, 1, 2, 0}, false, false},
      {{2, 14, 14, 256, 1024, 1, 1, 1, 0}, true, true},
  };
  uint32_t seed = 200;
  for (const Case& c : cases) {
    const Inputs in = make_inputs(c.s, seed += 10);
    const auto ref = run_cpu(c.s, in, c.residual, c.relu);
    for (const Variant& v : kVariants)
      EXPECT_TRUE(close_to_scale(run_cuda(gpu, c.s, in, c.residual, c.relu, v), ref, 1e-4f))
          << name(v) << " C=" << c.s.C << " K=" << c.s.K << " R=" << c.s.R;
  }
}

// The second call of a shape reuses the cached plan and must compute with the new data.
// A 3x3 shape, and 1x1 ones that the matmul route serves (one through its gather).
TEST(Conv2d, CudaPlanCacheReuse) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  for (const ConvShape& s : {ConvShape{2, 7, 9, 5, 7, 3, 3, 2, 1}, ConvShape{2, 7, 9, 8, 12, 1, 1, 1, 0},
                             ConvShape{2, 8, 6, 8, 12, 1, 1, 2, 0}})
    for (uint32_t seed : {300u, 310u, 320u}) {
      const Inputs in = make_inputs(s, seed);
      for (bool residual : {false, true})
        for (const Variant& v : kVariants)
          EXPECT_TRUE(close_to_scale(run_cuda(gpu, s, in, residual, true, v), run_cpu(s, in, residual, true), 1e-4f))
              << name(v) << " R=" << s.R << " stride=" << s.stride;
    }
}

#if CAPTION_HAS_CUDA
// What a call chose is reported for its (shape, params) once made, and only then.
TEST(Conv2d, CudaChoiceIsReported) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  // The choice depends on whether there is a residual and whether the pointers are 16-byte aligned
  // (as device allocations are), not on where they point.
  alignas(16) float any = 0;
  for (const ConvShape& s : {ConvShape{2, 7, 9, 5, 7, 3, 3, 2, 1}, ConvShape{2, 7, 9, 8, 12, 1, 1, 1, 0}}) {
    const Inputs in = make_inputs(s, 330);
    for (const Variant& v : kVariants) {
      const ConvParams p{&any, &any, &any, true, false, v.layout, v.search};
      run_cuda(gpu, s, in, true, true, v);
      const auto choice = cuda::conv2d_choice(s, p);
      ASSERT_TRUE(choice.has_value()) << name(v);
      // The matmul search takes the matmul wherever it serves (cuBLASLt has an FP32 algorithm for
      // every shape of CudaGemmRouteMatchesCpu, odd ones included); outside the timed search
      // nothing else is a matmul.
      const bool matmul = v.search == ConvSearch::Matmul && cuda::conv_gemm_spec(s, v.layout, DType::F32, false,
                                                                                  true, true);
      if (v.search != ConvSearch::Timed)
        EXPECT_EQ(choice->route == cuda::ConvRoute::Gemm, matmul) << name(v) << " R=" << s.R;
      if (choice->route == cuda::ConvRoute::Gemm) {
        EXPECT_EQ(choice->algo, -1) << name(v);
      } else {
        EXPECT_GE(choice->algo, 0) << name(v);
        EXPECT_LT(choice->algo, int(CUDNN_CONVOLUTION_FWD_ALGO_COUNT)) << name(v);
      }
    }
  }
  EXPECT_FALSE(cuda::conv2d_choice(ConvShape{5, 11, 13, 5, 7, 3, 3, 2, 1}, ConvParams{&any, &any, &any, true}))
      << "no test calls this shape";
}

// The cuBLASLt route (kernels/conv2d_gemm.h) serves every NHWC convolution, as the matmul
// y^T [K, rows] = w [K, R*S*C] cols^T over a call's output pixels, and no NCHW one.
TEST(Conv2d, GemmRouteServesNhwcOnly) {
  for (const Case& c : odd_cases()) {
    const ConvShape& s = c.s;
    const auto spec = cuda::conv_gemm_spec(s, Layout::NHWC, DType::F32, false, true, true);
    ASSERT_TRUE(spec.has_value()) << s.R << "x" << s.S << " stride " << s.stride;
    EXPECT_EQ(spec->m, s.K);
    EXPECT_EQ(spec->n, s.N * s.P() * s.Q()) << "small shapes take one call";
    EXPECT_EQ(spec->k, s.R * s.S * s.C);
    EXPECT_TRUE(spec->trans_a);
    EXPECT_TRUE(spec->relu);
    EXPECT_TRUE(spec->accumulate);
    EXPECT_EQ(cuda::conv_gemm_scratch(s, DType::F32),
              cuda::conv_gemm_direct(s) ? 0 : size_t(s.N) * s.P() * s.Q() * s.R * s.S * s.C * sizeof(float));
    EXPECT_FALSE(cuda::conv_gemm_spec(s, Layout::NCHW, DType::F32, false, true, true));
  }
  EXPECT_TRUE(cuda::conv_gemm_direct(ConvShape{3, 5, 7, 11, 13, 1, 1, 1, 0}));
  for (const ConvShape& s : {ConvShape{3, 5, 7, 11, 13, 1, 1, 2, 0}, ConvShape{3, 5, 7, 11, 13, 1, 1, 1, 1},
                             ConvShape{3, 5, 7, 11, 13, 3, 3, 1, 0}})
    EXPECT_FALSE(cuda::conv_gemm_direct(s)) << s.R << "x" << s.S << " stride " << s.stride << " pad " << s.pad;
}

// A gathered matrix above kMaxConvGemmScratch is made a few images at a time: the most images that
// divide the batch and fit, so that every call is the planned matmul; the direct route takes all.
TEST(Conv2d, GemmRouteSplitsLargeGathers) {
  const ConvShape layer1{256, 56, 56, 64, 64, 3, 3, 1, 1};  // 6.9 MiB of im2col matrix per image
  const size_t per_image = size_t(56) * 56 * 576 * sizeof(float);
  EXPECT_EQ(cuda::conv_gemm_images(layer1, DType::F32), 32);  // 220 MiB; 64 images would be 441 MiB
  EXPECT_EQ(cuda::conv_gemm_images(layer1, DType::BF16), 64);
  EXPECT_EQ(cuda::conv_gemm_scratch(layer1, DType::F32), 32 * per_image);
  EXPECT_EQ(cuda::conv_gemm_spec(layer1, Layout::NHWC, DType::F32, false, true, false)->n, 32 * 56 * 56);
  EXPECT_EQ(cuda::conv_gemm_images(ConvShape{37, 56, 56, 64, 64, 3, 3, 1, 1}, DType::F32), 37) << "255 MiB";
  EXPECT_EQ(cuda::conv_gemm_images(ConvShape{41, 56, 56, 64, 64, 3, 3, 1, 1}, DType::F32), 1) << "a prime batch";
  EXPECT_EQ(cuda::conv_gemm_images(ConvShape{256, 56, 56, 64, 62, 3, 3, 1, 1}, DType::F32), 256)
      << "62 channels: a later call's y would not be 16-byte aligned";
  EXPECT_EQ(cuda::conv_gemm_images(ConvShape{256, 56, 56, 64, 256, 1, 1, 1, 0}, DType::F32), 256) << "direct";
  EXPECT_LE(cuda::conv_gemm_scratch(ConvShape{256, 224, 224, 3, 64, 7, 7, 2, 3}, DType::F32),
            cuda::kMaxConvGemmScratch);
}

// The gather's indexing (Im2col::source, shared with the CUDA kernel) checked on the CPU: the
// matrix it describes, times the filters, is the convolution; in 4-channel units too.
TEST(Conv2d, Im2colMatrixTimesFiltersIsTheConvolution) {
  uint32_t seed = 900;
  for (const Case& c : odd_cases()) {
    const ConvShape& s = c.s;
    const Inputs in = make_inputs(s, seed += 10);
    const cuda::Im2col m(s, 1);
    const uint32_t rows = uint32_t(s.N) * s.P() * s.Q(), cols = m.cols();
    ASSERT_EQ(cols, uint32_t(s.R) * s.S * s.C);
    std::vector<float> y(size_t(rows) * s.K);
    for (uint32_t row = 0; row < rows; ++row)
      for (int k = 0; k < s.K; ++k) {
        double acc = in.bias[k] + (c.residual ? in.res[size_t(row) * s.K + k] : 0.0);
        for (uint32_t col = 0; col < cols; ++col)
          if (const int64_t from = m.source(row, col); from >= 0)
            acc += double(in.x.at(size_t(from))) * in.w[size_t(k) * cols + col];
        y[size_t(row) * s.K + k] = float(c.relu ? std::max(acc, 0.0) : acc);
      }
    const std::string what = std::to_string(s.R) + "x" + std::to_string(s.S) + " C=" + std::to_string(s.C);
    EXPECT_TRUE(close_to_scale(y, naive_conv(s, in.x, in.w, in.bias, c.residual ? &in.res : nullptr, c.relu), 1e-6f))
        << what;
    if (s.C % 4 == 0) {
      const cuda::Im2col wide(s, 4);
      ASSERT_EQ(wide.cols() * 4, cols) << what;
      for (uint32_t row = 0; row < rows; ++row)
        for (uint32_t col = 0; col < wide.cols(); ++col) {
          const int64_t from = wide.source(row, col);
          ASSERT_EQ(from < 0 ? -1 : from * 4, m.source(row, col * 4)) << what << " row " << row << " col " << col;
        }
    }
  }
}

// The route run on its own through conv_gemm (gathering the im2col matrix unless the shape is 1x1,
// stride 1, unpadded), in any precision: null when cuBLASLt offers no algorithm. T is float or
// bfloat16 bits.
template <class T>
std::optional<std::vector<float>> run_gemm(Context& gpu, const ConvShape& s, const Inputs& in, bool residual,
                                           bool relu, bool tf32 = false) {
  constexpr bool bf16 = std::is_same_v<T, uint16_t>;
  auto up = [&](const std::vector<float>& v) {
    if constexpr (bf16) return test::to_device(gpu, test::to_bf16(v));
    else return test::to_device(gpu, v);
  };
  auto dx = up(in.x), dw = up(in.w), dr = up(in.res), db = up(in.bias);
  auto dy = up(std::vector<float>(size_t(s.N) * s.P() * s.Q() * s.K, std::numeric_limits<float>::quiet_NaN()));
  const auto spec = cuda::conv_gemm_spec(s, Layout::NHWC, bf16 ? DType::BF16 : DType::F32, tf32, relu, residual);
  const auto mm = cuda::LtMatmul::plan(gpu.exec().blas, spec.value());
  if (!mm) return std::nullopt;
  EXPECT_EQ(cuda::conv_gemm(gpu.exec(), *mm, s, spec->dtype, dx.data(), dw.data(), residual ? dr.data() : nullptr,
                            db.data(), dy.data()),
            CUBLAS_STATUS_SUCCESS);
  if constexpr (bf16) return test::from_bf16(test::to_host(gpu, dy));
  else return test::to_host(gpu, dy);
}

TEST(Conv2d, CudaGemmRouteMatchesCpu) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  std::vector<Case> cases = odd_cases();
  const size_t odd = cases.size();
  cases.push_back({{1, 1, 1, 3, 5, 1, 1, 1, 0}, true, true});          // one pixel
  cases.push_back({{1, 9, 7, 6, 5, 1, 1, 3, 0}, true, true});          // stride 3, odd sizes
  // ResNet shapes: an expand, a reduce, a downsample (gathered), a 3x3 of layer3, and layer1's
  // 3x3 at a batch whose matrix (276 MiB) is gathered in two calls of 20 images.
  cases.push_back({{2, 14, 14, 256, 1024, 1, 1, 1, 0}, true, true});
  cases.push_back({{3, 28, 28, 512, 128, 1, 1, 1, 0}, false, true});
  cases.push_back({{2, 28, 28, 512, 1024, 1, 1, 2, 0}, false, false});
  cases.push_back({{2, 14, 14, 256, 256, 3, 3, 1, 1}, false, true});
  cases.push_back({{40, 56, 56, 64, 64, 3, 3, 1, 1}, true, true});
  ASSERT_EQ(cuda::conv_gemm_images(cases.back().s, DType::F32), 20);
  uint32_t seed = 700;
  int ran = 0, ran_resnet = 0;  // FP32 runs; TF32 and bfloat16 runs on the ResNet shapes
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const bool resnet = i >= odd + 2;
    Inputs in = make_inputs(c.s, seed += 10);
    const std::string what = "C=" + std::to_string(c.s.C) + " K=" + std::to_string(c.s.K) +
                             " N*H*W=" + std::to_string(c.s.N * c.s.H * c.s.W);
    const auto ref = run_cpu(c.s, in, c.residual, c.relu);
    if (const auto y = run_gemm<float>(gpu, c.s, in, c.residual, c.relu)) {
      EXPECT_TRUE(close_to_scale(*y, ref, 1e-4f)) << "fp32 " << what;
      ++ran;
    }
    if (const auto y = run_gemm<float>(gpu, c.s, in, c.residual, c.relu, true)) {
      EXPECT_TRUE(close_to_scale(*y, ref, 5e-3f)) << "tf32 " << what;
      ran_resnet += resnet;
    }
    // bfloat16 values in; the epilogue's bias is bfloat16 too (see CudaBf16CloseToCpu).
    for (auto* v : {&in.x, &in.w, &in.res, &in.bias}) *v = test::from_bf16(test::to_bf16(*v));
    if (const auto y = run_gemm<uint16_t>(gpu, c.s, in, c.residual, c.relu)) {
      EXPECT_TRUE(close_to_scale(*y, run_cpu(c.s, in, c.residual, c.relu), 2e-2f)) << "bf16 " << what;
      ran_resnet += resnet;
    }
  }
  EXPECT_EQ(ran, int(cases.size())) << "cuBLASLt offered no FP32 algorithm for some shapes";
  EXPECT_EQ(ran_resnet, 2 * int(cases.size() - odd - 2))
      << "cuBLASLt offered no TF32 or bfloat16 algorithm for a ResNet shape";
}

#endif

// x = 1 + 2^-15 and w = 1 over C = 256: every partial sum is exact in FP32 (256.0078125), while TF32
// rounds x to 1 and gives 256. A 1x1 kernel leaves cuDNN no Winograd/FFT transform to round with;
// the cuBLASLt route is checked the same way.
TEST(Conv2d, CudaPlainFp32IsNotTf32) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  const ConvShape s{2, 5, 5, 256, 8, 1, 1, 1, 0};
  Inputs in;
  in.x.assign(size_t(s.N) * s.H * s.W * s.C, 1.f + std::ldexp(1.f, -15));
  in.w.assign(size_t(s.K) * s.C, 1.f);
  in.bias.assign(s.K, 0.f);
  in.res.assign(size_t(s.N) * s.P() * s.Q() * s.K, 0.f);
  const std::vector<float> exact(size_t(s.N) * s.P() * s.Q() * s.K, 256.0078125f);
  for (Layout layout : {Layout::NHWC, Layout::NCHW})
    EXPECT_TRUE(all_close(run_cuda(gpu, s, in, false, false, {layout, ConvSearch::Heuristic}), exact, 0.f, 1e-4f))
        << layout_name(layout);
#if CAPTION_HAS_CUDA
  const auto y = run_gemm<float>(gpu, s, in, false, false);
  ASSERT_TRUE(y.has_value());
  EXPECT_TRUE(all_close(*y, exact, 0.f, 1e-4f)) << "cuBLASLt";
#endif
}

// bfloat16 (CUDA only): inputs that are bfloat16 values give the FP32 result on them, accumulated in
// FP32, rounded once or twice to bfloat16 (up to 2^-8 of the value each: the fused call rounds
// once, with the bias in bfloat16; the plain one rounds the convolution, whose value may exceed
// the output's by |bias| + |residual| <= 2, then the epilogue's sum). Every shape, both layouts,
// both searches.
std::vector<float> run_cuda_bf16(Context& gpu, const ConvShape& s, const Inputs& nhwc, bool residual, bool relu,
                                 const Variant& v) {
  const Inputs in = in_layout(s, nhwc, v.layout);
  const int P = s.P(), Q = s.Q();
  auto dx = test::to_device(gpu, test::to_bf16(in.x)), dw = test::to_device(gpu, test::to_bf16(in.w));
  auto dr = test::to_device(gpu, test::to_bf16(in.res));
  auto db = test::to_device(gpu, in.bias);
  auto db16 = test::to_device(gpu, test::to_bf16(in.bias));
  auto dy = test::to_device(gpu, std::vector<uint16_t>(size_t(s.N) * P * Q * s.K, 0x7fc0));  // NaN
  const ConvParamsBf16 p{dw.data(), db.data(), db16.data(), residual ? dr.data() : nullptr, relu, v.layout, v.search};
  conv2d(gpu.exec(), s, dx.data(), p, dy.data());
  return out_of_layout(s, test::from_bf16(test::to_host(gpu, dy)), v.layout);
}

TEST(Conv2d, CudaBf16CloseToCpu) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  std::vector<Case> cases = odd_cases();
  cases.push_back({{2, 14, 14, 256, 1024, 1, 1, 1, 0}, true, true});  // a ResNet expand
  cases.push_back({{2, 28, 28, 64, 64, 3, 3, 1, 1}, false, true});    // a ResNet 3x3
  uint32_t seed = 500;
  for (const Case& c : cases) {
    Inputs in = make_inputs(c.s, seed += 10);
    for (auto* v : {&in.x, &in.w, &in.res}) *v = test::from_bf16(test::to_bf16(*v));  // bfloat16 values
    // The fused call takes the bias in bfloat16 too: the reference uses that one.
    Inputs ref_in = in;
    ref_in.bias = test::from_bf16(test::to_bf16(in.bias));
    const auto ref = run_cpu(c.s, ref_in, c.residual, c.relu), ref_fp32_bias = run_cpu(c.s, in, c.residual, c.relu);
    for (const Variant& v : kVariants) {
      const auto y = run_cuda_bf16(gpu, c.s, in, c.residual, c.relu, v);
      EXPECT_TRUE(close_to_scale(y, ref, 2e-2f) || close_to_scale(y, ref_fp32_bias, 2e-2f))
          << name(v) << " C=" << c.s.C << " K=" << c.s.K << " R=" << c.s.R << " N=" << c.s.N;
    }
  }
}

TEST(Conv2d, Bf16OnTheCpuIsRefused) {
  Context cpu(Device::CPU);
  const ConvShape s{1, 3, 3, 2, 2, 1, 1, 1, 0};
  std::vector<uint16_t> x(18), w(4), y(18);
  const std::vector<float> bias(2);
  EXPECT_THROW(conv2d(cpu.exec(), s, x.data(), ConvParamsBf16{w.data(), bias.data(), w.data(), nullptr, true}, y.data()),
               std::invalid_argument);
}

TEST(Conv2d, CudaTf32CloseToCpu) {
  REQUIRE_CUDA();
  Context gpu(Device::CUDA);
  const ConvShape s{2, 14, 14, 64, 32, 3, 3, 1, 1};
  const Inputs in = make_inputs(s, 400);
  const auto ref = run_cpu(s, in, true, true);
  for (const Variant& v : kVariants)
    EXPECT_TRUE(close_to_scale(run_cuda(gpu, s, in, true, true, v, true), ref, 5e-3f)) << name(v);
}

}  // namespace
}  // namespace caption
