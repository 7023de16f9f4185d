#include "model/image_pipeline.h"

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "model/image_loader.h"
#include "model/split_on_oom.h"

namespace caption {
namespace {

struct Decoded {
  std::vector<size_t> indices;
  std::vector<uint8_t> pixels;
  std::vector<std::string> thumbnails;
  std::vector<std::pair<size_t, std::string>> errors;
};

}  // namespace

void encode_images(ResNet50& encoder, const std::vector<std::string>& paths, int batch, int threads,
                   const std::function<void(const EncodedBatch&)>& on_batch,
                   const std::function<void(size_t, const std::string&)>& on_error, int thumbnail_side) {
  const ImageOptions opt = encoder.config().image_options();
  const size_t image_bytes = size_t(opt.image_size) * opt.image_size * 3;
  const size_t batches = (paths.size() + batch - 1) / batch;
  threads = std::max(1, threads);
  std::mutex mu;
  std::condition_variable cv;
  std::map<size_t, Decoded> ready;
  size_t next_claim = 0, consumed = 0;
  int encoder_batch = batch;  // smaller once a batch has run out of device memory
  bool stop = false;

  auto worker = [&] {
    for (;;) {
      size_t b;
      {
        std::unique_lock<std::mutex> lock(mu);
        // Bounded look-ahead: never more than `threads` batches beyond the one being encoded.
        cv.wait(lock, [&] { return stop || next_claim >= batches || next_claim < consumed + threads + 1; });
        if (stop || next_claim >= batches) return;
        b = next_claim++;
      }
      Decoded d;
      const size_t first = b * batch, last = std::min(paths.size(), first + batch);
      d.pixels.resize((last - first) * image_bytes);
      for (size_t i = first; i < last; ++i) {
        try {
          Thumbnail thumb{thumbnail_side, {}};
          load_image(paths[i], opt, d.pixels.data() + d.indices.size() * image_bytes,
                     thumbnail_side > 0 ? &thumb : nullptr);
          d.indices.push_back(i);
          if (thumbnail_side > 0) d.thumbnails.push_back(std::move(thumb.jpeg));
        } catch (const std::exception& e) {
          d.errors.emplace_back(i, e.what());
        }
      }
      d.pixels.resize(d.indices.size() * image_bytes);
      std::lock_guard<std::mutex> lock(mu);
      ready.emplace(b, std::move(d));
      cv.notify_all();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  auto finish = [&] {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv.notify_all();
    for (auto& t : pool) t.join();
  };
  try {
    for (size_t b = 0; b < batches; ++b) {
      Decoded d;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return ready.count(b) > 0; });
        d = std::move(ready[b]);
        ready.erase(b);
      }
      for (auto& [i, msg] : d.errors) on_error(i, msg);
      EncodedBatch out;
      out.indices = std::move(d.indices);
      out.thumbnails = std::move(d.thumbnails);
      out.features.resize(out.indices.size() * encoder.feature_dim());
      run_in_pieces(int(out.indices.size()), encoder_batch, [&](int first, int count) {
        encoder.encode(d.pixels.data() + first * image_bytes, count, out.features.data() + size_t(first) * encoder.feature_dim());
      });
      out.encoder_batch = encoder_batch;
      {
        std::lock_guard<std::mutex> lock(mu);
        consumed = b + 1;
      }
      cv.notify_all();
      on_batch(out);
    }
  } catch (...) {
    finish();
    throw;
  }
  finish();
}

}  // namespace caption
