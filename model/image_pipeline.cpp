#include "model/image_pipeline.h"

#include <condition_variable>
#include <cstring>
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

// One image's outcome, kept until the rest of its batch is in.
struct Loaded {
  bool ok = false;
  std::string thumbnail;
  std::string error;
};

struct Pending {
  size_t done = 0;
  std::vector<Loaded> images;
};

}  // namespace

void encode_images(ResNet50& encoder, const std::vector<std::string>& paths, int batch, int threads,
                   const std::function<void(const EncodedBatch&)>& on_batch,
                   const std::function<void(size_t, const std::string&)>& on_error, int thumbnail_side) {
  const ImageOptions opt = encoder.config().image_options();
  const size_t image_bytes = size_t(opt.image_size) * opt.image_size * 3;
  const size_t n = paths.size(), batches = (n + batch - 1) / batch;
  const int dim = encoder.feature_dim();
  threads = std::max(1, threads);
  auto batch_size = [&](size_t b) { return std::min(n, (b + 1) * batch) - b * batch; };
  // The workers claim single images in input order, so all of them work on the oldest batch
  // not yet decoded: a batch is ready in 1/threads of the time one thread would take (small
  // jobs, the first batch of big ones). Image i is decoded into slot i % batch of buffer
  // ring[(i / batch) % ring.size()]. Two buffers are the encoder's (the batch it computes and
  // the one queued behind it); the others let the workers run ahead by at least two batches
  // and 2 * threads images. A buffer comes round again only after its batch has been
  // delivered. Pinned on CUDA (uploaded from directly, asynchronously) and allocated once:
  // pinning is too slow to do per batch.
  const size_t ahead = std::max<size_t>(2, (2 * size_t(threads) + batch - 1) / batch);
  std::vector<HostBuffer> ring;
  for (size_t i = 0; i < std::min(2 + ahead, batches); ++i)
    ring.emplace_back(encoder.device(), std::min<size_t>(batch, n) * image_bytes);
  std::mutex mu;
  std::condition_variable cv;
  std::map<size_t, Pending> pending;  // by batch, created by its first image's worker
  size_t next_image = 0, consumed = 0;
  bool stop = false;

  auto worker = [&] {
    for (;;) {
      size_t i;
      uint8_t* pixels;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stop || next_image >= n || next_image / batch < consumed + ring.size(); });
        if (stop || next_image >= n) return;
        i = next_image++;
        pixels = ring[i / batch % ring.size()].data<uint8_t>() + i % batch * image_bytes;
      }
      Loaded r;
      try {
        Thumbnail thumb{thumbnail_side, {}};
        load_image(paths[i], opt, pixels, thumbnail_side > 0 ? &thumb : nullptr);
        r.ok = true;
        r.thumbnail = std::move(thumb.jpeg);
      } catch (const std::exception& e) {
        r.error = e.what();
      }
      std::lock_guard<std::mutex> lock(mu);
      Pending& p = pending[i / batch];
      p.images.resize(batch_size(i / batch));
      p.images[i % batch] = std::move(r);
      if (++p.done == p.images.size()) cv.notify_all();
    }
  };
  // Batch b once all its images are in: the good ones moved together at the front of its
  // buffer, in input order.
  auto take = [&](size_t b) {
    Pending p;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] {
        auto it = pending.find(b);
        return it != pending.end() && it->second.done == batch_size(b);
      });
      p = std::move(pending[b]);
      pending.erase(b);
    }
    Decoded d;
    uint8_t* pixels = ring[b % ring.size()].data<uint8_t>();
    d.pixels = pixels;
    for (size_t k = 0; k < p.images.size(); ++k) {
      Loaded& r = p.images[k];
      if (!r.ok) {
        d.errors.emplace_back(b * batch + k, std::move(r.error));
        continue;
      }
      if (d.indices.size() != k)  // an earlier image failed: close the gap
        std::memmove(pixels + d.indices.size() * image_bytes, pixels + k * image_bytes, image_bytes);
      d.indices.push_back(b * batch + k);
      if (thumbnail_side > 0) d.thumbnails.push_back(std::move(r.thumbnail));
    }
    return d;
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
      Decoded d = take(b);
      const int good = int(d.indices.size());
      bool submitted = false;
      if (overlap && good > 0) {
        try {
          encoder.submit(d.pixels, good);
          submitted = true;
        } catch (const OutOfMemory&) {
          overlap = false;
          encoder_batch = std::max(1, good / 2);
        }
      }
      if (queued) collect_queued();
      if (submitted) {
        queued = Queued{b, std::move(d), encoder_batch};
        continue;
      }
      std::vector<float> features(size_t(good) * dim);
      run_in_pieces(good, encoder_batch, [&](int first, int count) {
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
