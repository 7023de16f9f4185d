#include "model/image_pipeline.h"

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "model/image_loader.h"
#include "model/split_on_oom.h"
#include "runtime/host_buffer.h"

namespace caption {
namespace {

struct Decoded {
  std::vector<size_t> indices;
  const uint8_t* pixels = nullptr;  // indices.size() images, in the batch's ring buffer
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
  const int dim = encoder.feature_dim();
  threads = std::max(1, threads);
  // Batch b is decoded into ring[b % ring.size()]. The look-ahead bound below keeps batches
  // [consumed, consumed + threads] in flight, so a buffer comes round again only after its
  // batch has been encoded. Pinned on CUDA (uploaded from directly, asynchronously) and
  // allocated once: pinning is too slow to do per batch.
  std::vector<HostBuffer> ring;
  for (size_t i = 0; i < std::min<size_t>(threads + 1, batches); ++i)
    ring.emplace_back(encoder.device(), std::min<size_t>(batch, paths.size()) * image_bytes);
  std::mutex mu;
  std::condition_variable cv;
  std::map<size_t, Decoded> ready;
  size_t next_claim = 0, consumed = 0;
  bool stop = false;

  auto worker = [&] {
    for (;;) {
      size_t b;
      {
        std::unique_lock<std::mutex> lock(mu);
        // Bounded look-ahead: never more than `threads` batches beyond the oldest not collected.
        cv.wait(lock, [&] { return stop || next_claim >= batches || next_claim < consumed + threads + 1; });
        if (stop || next_claim >= batches) return;
        b = next_claim++;
      }
      Decoded d;
      uint8_t* pixels = ring[b % ring.size()].data<uint8_t>();
      d.pixels = pixels;
      const size_t first = b * batch, last = std::min(paths.size(), first + batch);
      for (size_t i = first; i < last; ++i) {
        try {
          Thumbnail thumb{thumbnail_side, {}};
          load_image(paths[i], opt, pixels + d.indices.size() * image_bytes, thumbnail_side > 0 ? &thumb : nullptr);
          d.indices.push_back(i);
          if (thumbnail_side > 0) d.thumbnails.push_back(std::move(thumb.jpeg));
        } catch (const std::exception& e) {
          d.errors.emplace_back(i, e.what());
        }
      }
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
  // Hands batch b out once its features are in, and gives its ring buffer back to the workers.
  auto deliver = [&](size_t b, Decoded& d, std::vector<float>&& features, int encoder_batch) {
    {
      std::lock_guard<std::mutex> lock(mu);
      consumed = b + 1;
    }
    cv.notify_all();
    for (auto& [i, msg] : d.errors) on_error(i, msg);
    EncodedBatch out{std::move(d.indices), std::move(features), std::move(d.thumbnails), encoder_batch};
    on_batch(out);
  };
  // Batch b is submitted before batch b - 1 is collected, so b's upload overlaps b - 1's
  // convolutions (ResNet50::submit). A batch whose submit runs out of device memory, and every
  // batch after it, goes the synchronous way instead: encode() in pieces of half the batch,
  // halved again until they fit (run_in_pieces), the smaller size kept. Memory is short then,
  // and with nothing queued the encoder holds one batch's input on the device, not two.
  int encoder_batch = batch;  // smaller once a batch has run out of device memory
  bool overlap = true;
  struct Queued {
    size_t b;
    Decoded d;
    int encoder_batch;
  };
  std::optional<Queued> queued;  // submitted, not collected
  auto collect_queued = [&] {
    Queued q = std::move(*queued);
    queued.reset();
    std::vector<float> features(q.d.indices.size() * dim);
    encoder.collect(features.data());
    deliver(q.b, q.d, std::move(features), q.encoder_batch);
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
      const int n = int(d.indices.size());
      bool submitted = false;
      if (overlap && n > 0) {
        try {
          encoder.submit(d.pixels, n);
          submitted = true;
        } catch (const OutOfMemory&) {
          overlap = false;
          encoder_batch = std::max(1, n / 2);
        }
      }
      if (queued) collect_queued();
      if (submitted) {
        queued = Queued{b, std::move(d), encoder_batch};
        continue;
      }
      std::vector<float> features(size_t(n) * dim);
      run_in_pieces(n, encoder_batch, [&](int first, int count) {
        encoder.encode(d.pixels + first * image_bytes, count, features.data() + size_t(first) * dim);
      });
      deliver(b, d, std::move(features), encoder_batch);
    }
    if (queued) collect_queued();
  } catch (...) {
    finish();
    encoder.discard();  // before the ring is freed: no upload may still read it
    throw;
  }
  finish();
}

}  // namespace caption
