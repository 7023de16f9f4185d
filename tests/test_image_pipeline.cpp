// The image pipeline (model/image_pipeline.h) and the host buffers it decodes into: whatever the
// number of decode threads and the batch size, batches come back in input order, a bad image is
// reported before its batch, and each batch's features are exactly encode() of its good images
// (the pipeline before it overlapped anything); a batch over the memory limit is split; on CUDA
// the pinned, queued path against the CPU encoder.
#include "model/image_pipeline.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>

#include "runtime/host_buffer.h"
#include "tests/io_test_util.h"
#include "tests/test_util.h"

#if CAPTION_HAS_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#endif
#if CAPTION_HAS_CUDA
#include <cuda_runtime.h>
#endif

namespace caption {
namespace {

TEST(HostBuffer, AlignedWritableAndMovable) {
  HostBuffer none;
  EXPECT_EQ(none.data<void>(), nullptr);
  EXPECT_EQ(HostBuffer(Device::CPU, 0).data<void>(), nullptr);
  HostBuffer a(Device::CPU, 1001);
  EXPECT_FALSE(a.pinned());
  ASSERT_EQ(a.size(), 1001u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data<void>()) % HostBuffer::kAlignment, 0u);
  for (size_t i = 0; i < a.size(); ++i) a.data<uint8_t>()[i] = uint8_t(i * 7);
  uint8_t* p = a.data<uint8_t>();
  HostBuffer b(std::move(a));
  EXPECT_EQ(a.data<void>(), nullptr);
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(b.data<uint8_t>(), p);
  a = std::move(b);
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a.data<uint8_t>()[i], uint8_t(i * 7)) << i;
}

// Pinned memory through both streams: upload on the copy stream, the compute stream waits for
// it (Event) and downloads into a second pinned buffer.
TEST(HostBuffer, PinnedRoundTripThroughBothStreamsCuda) {
  REQUIRE_CUDA();
#if CAPTION_HAS_CUDA
  const size_t n = 100003;
  HostBuffer in(Device::CUDA, n * sizeof(float)), out(Device::CUDA, n * sizeof(float));
  ASSERT_TRUE(in.pinned());
  cudaPointerAttributes attr{};
  ASSERT_EQ(cudaPointerGetAttributes(&attr, in.data<void>()), cudaSuccess);
  EXPECT_EQ(attr.type, cudaMemoryTypeHost);  // page-locked and known to CUDA (pageable: Unregistered)
  const auto data = test::random_vector(n, 5);
  std::copy(data.begin(), data.end(), in.data<float>());
  Context ctx(Device::CUDA);
  PoolBuffer<float> dev(ctx.pool(), n, ctx.exec().stream);
  Event uploaded(Device::CUDA), done(Device::CUDA);
  ctx.upload_async(dev.data(), in.data<float>(), n * sizeof(float));
  uploaded.record(ctx.copy_stream());
  uploaded.wait(ctx.exec().stream);
  ctx.download_async(out.data<float>(), dev.data(), n * sizeof(float));
  done.record(ctx.exec().stream);
  done.synchronize();
  EXPECT_EQ(std::vector<float>(out.data<float>(), out.data<float>() + n), data);
#endif
}

#if CAPTION_HAS_OPENCV

// A 4-stage ("C4", 1024-d) ResNet50 with random weights, and small inputs: fast on the CPU.
std::map<std::string, Tensor> random_c4() {
  std::map<std::string, Tensor> w;
  uint32_t seed = 1;
  for (const auto& [name, shape] : resnet50_tensor_shapes(4)) {
    size_t n = 1;
    for (auto d : shape) n *= size_t(d);
    Tensor& t = w[name];
    t.shape = shape;
    if (shape.size() == 4) {
      const float a = std::sqrt(6.f / float(shape[1] * shape[2] * shape[3]));
      t.data = test::random_vector(n, seed++, -a, a);
    } else if (name.find("running_var") != std::string::npos || name.find(".weight") != std::string::npos) {
      t.data = test::random_vector(n, seed++, 0.5f, 1.5f);
    } else {
      t.data = test::random_vector(n, seed++, -0.1f, 0.1f);
    }
  }
  return w;
}

EncoderConfig small_config() {
  EncoderConfig cfg;
  cfg.stages = 4;
  cfg.image_size = 32;
  cfg.resize = ResizeMode::Squash;
  return cfg;
}

// Nine inputs: eight small images of different sizes and colours, and one that is not an image.
std::vector<std::string> write_inputs(const test::ScratchDir& dir) {
  std::vector<std::string> paths;
  for (int k = 0; k < 9; ++k) {
    const std::string path = dir.path("img" + std::to_string(k) + ".png");
    if (k == 4) {
      test::write_bytes(path, "not an image");
    } else {
      cv::Mat img(30 + 3 * k, 40 - 2 * k, CV_8UC3);
      for (int y = 0; y < img.rows; ++y)
        for (int x = 0; x < img.cols; ++x)
          img.at<cv::Vec3b>(y, x) = cv::Vec3b(uint8_t(x * 5 + k * 30), uint8_t(y * 7 + k), uint8_t((x * y + 11 * k) % 256));
      EXPECT_TRUE(cv::imwrite(path, img));
    }
    paths.push_back(path);
  }
  return paths;
}

// What a run hands out, in order: "error i" and "batch i j ..." lines, and the features by input.
struct Outcome {
  std::vector<std::string> log;
  std::map<size_t, std::vector<float>> features;
  std::vector<int> encoder_batches;
  size_t thumbnails = 0;
};

Outcome run_pipeline(ResNet50& net, const std::vector<std::string>& paths, int batch, int threads, int thumbnail_side = 0) {
  Outcome r;
  const int dim = net.feature_dim();
  encode_images(
      net, paths, batch, threads,
      [&](const EncodedBatch& b) {
        std::string line = "batch";
        for (size_t k = 0; k < b.indices.size(); ++k) {
          line += " " + std::to_string(b.indices[k]);
          r.features[b.indices[k]].assign(b.features.begin() + k * dim, b.features.begin() + (k + 1) * dim);
        }
        r.log.push_back(line);
        r.encoder_batches.push_back(b.encoder_batch);
        for (const auto& t : b.thumbnails) r.thumbnails += !t.empty();
      },
      [&](size_t i, const std::string&) { r.log.push_back("error " + std::to_string(i)); },
      thumbnail_side);
  return r;
}

// The pipeline as it was before transfers overlapped: each batch's good images, encode()d together.
Outcome reference(ResNet50& net, const std::vector<std::string>& paths, int batch) {
  Outcome r;
  const int dim = net.feature_dim();
  const ImageOptions opt = net.config().image_options();
  const size_t image = size_t(opt.image_size) * opt.image_size * 3;
  for (size_t first = 0; first < paths.size(); first += batch) {
    std::vector<uint8_t> pixels;
    std::vector<size_t> good;
    for (size_t i = first; i < std::min(paths.size(), first + batch); ++i) {
      std::vector<uint8_t> px(image);
      try {
        load_image(paths[i], opt, px.data());
      } catch (const std::exception&) {
        r.log.push_back("error " + std::to_string(i));
        continue;
      }
      pixels.insert(pixels.end(), px.begin(), px.end());
      good.push_back(i);
    }
    std::vector<float> f(good.size() * dim);
    if (!good.empty()) net.encode(pixels.data(), int(good.size()), f.data());
    std::string line = "batch";
    for (size_t k = 0; k < good.size(); ++k) {
      line += " " + std::to_string(good[k]);
      r.features[good[k]].assign(f.begin() + k * dim, f.begin() + (k + 1) * dim);
    }
    r.log.push_back(line);
  }
  return r;
}

TEST(ImagePipeline, SameFeaturesAndOrderForAnyThreadsAndBatch) {
  test::ScratchDir dir;
  const auto paths = write_inputs(dir);
  Context ctx(Device::CPU);
  ResNet50 net(ctx, small_config(), random_c4(), "random");
  std::map<size_t, std::vector<float>> batch_of_one;
  for (int batch : {1, 3, 7}) {
    const Outcome want = reference(net, paths, batch);
    ASSERT_EQ(want.features.size(), 8u);
    for (int threads : {1, 3, 8}) {
      SCOPED_TRACE("batch " + std::to_string(batch) + ", threads " + std::to_string(threads));
      const Outcome got = run_pipeline(net, paths, batch, threads, threads == 3 ? 24 : 0);
      EXPECT_EQ(got.log, want.log);
      EXPECT_TRUE(got.features == want.features) << "features differ from encode() of the same batches";
      for (int e : got.encoder_batches) EXPECT_EQ(e, batch);
      EXPECT_EQ(got.thumbnails, threads == 3 ? 8u : 0u);
      EXPECT_EQ(net.queued(), 0);
    }
    // Other batch sizes group the images differently, which changes no bit (every CPU op
    // computes an image's outputs from its own inputs in a fixed order).
    if (batch == 1) batch_of_one = want.features;
    EXPECT_TRUE(want.features == batch_of_one) << "batch " << batch;
  }
}

// Under a memory limit that holds the weights and the activations of one image but not six,
// batches are encoded in pieces (the synchronous way) and the results are those of the batch, bit
// for bit.
TEST(ImagePipeline, BatchOverTheMemoryLimitIsSplit) {
  test::ScratchDir dir;
  const auto paths = write_inputs(dir);
  const auto weights = random_c4();
  Context free_ctx(Device::CPU);
  ResNet50 free_net(free_ctx, small_config(), weights, "random");
  // The weights, and 1 MiB more: at 32x32 one image's activations take 5 x 70 KB.
  const size_t limit = free_ctx.pool().stats().bytes_reserved + (size_t(1) << 20);
  const Outcome want = reference(free_net, paths, 7);
  Context ctx(Device::CPU, limit);
  ResNet50 net(ctx, small_config(), weights, "random");
  const Outcome got = run_pipeline(net, paths, 7, 2);
  EXPECT_EQ(got.log, want.log);
  ASSERT_EQ(got.encoder_batches.size(), 2u);
  EXPECT_LT(got.encoder_batches[0], 7);
  EXPECT_EQ(got.encoder_batches[1], got.encoder_batches[0]);
  EXPECT_TRUE(got.features == want.features) << "pieces differ from the whole batch";
}

// On CUDA: pinned ring, two streams, queued batches; against the CPU encoder.
TEST(ImagePipeline, CudaMatchesCpu) {
  REQUIRE_CUDA();
  test::ScratchDir dir;
  const auto paths = write_inputs(dir);
  const auto weights = random_c4();
  Context cpu(Device::CPU), gpu(Device::CUDA);
  ResNet50 ref(cpu, small_config(), weights, "random"), net(gpu, small_config(), weights, "random");
  for (int batch : {1, 3}) {
    const Outcome want = reference(ref, paths, batch);
    const Outcome got = run_pipeline(net, paths, batch, 2);
    EXPECT_EQ(got.log, want.log);
    ASSERT_EQ(got.features.size(), want.features.size());
    double diff = 0, scale = 0;
    for (const auto& [i, f] : want.features)
      for (size_t k = 0; k < f.size(); ++k) {
        diff = std::max(diff, std::fabs(double(got.features.at(i)[k]) - f[k]));
        scale = std::max(scale, std::fabs(double(f[k])));
      }
    EXPECT_LE(diff / scale, 1e-4) << "batch " << batch;  // the ResNet50 CUDA tests' measure
  }
}

#endif  // CAPTION_HAS_OPENCV

}  // namespace
}  // namespace caption
