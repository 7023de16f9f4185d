// caption describe: captions for images, from image files (encoder + decoder in one streaming
// pipeline) or from precomputed features.
#include <chrono>
#include <filesystem>
#include <memory>

#include "model/captioner.h"
#include "model/captions.h"
#include "model/image_pipeline.h"
#include "model/split_on_oom.h"
#include "runtime/error.h"
#include "tools/caption_writer.h"
#include "tools/commands.h"
#include "tools/device_options.h"
#include "tools/html_gallery.h"
#include "tools/image_inputs.h"
#include "tools/model_loader.h"
#include "tools/progress.h"
#include "tools/shard.h"

namespace caption::cli {
namespace {

struct Args {
  std::string model = CAPTION_DEFAULT_MODEL, images, output, html, format = "jsonl", shard = "0/1";
  std::vector<std::string> features;
  bool resume = false;
  std::vector<std::string> inputs;
  DecodeOptions decode;
  ImageRunOptions run;
  DeviceOptions device;
};

// Captions of `count` feature rows, in pieces of at most `piece` images: a piece that runs
// out of device memory is split (run_in_pieces) and `piece` stays smaller for what follows.
std::vector<std::string> captions_of(LoadedModel& model, const float* rows, int count, DecodeOptions opt, int& piece) {
  std::vector<std::string> out(count);
  const size_t D = model.files.config.decoder.feature_dim;
  run_in_pieces(count, piece, [&](int first, int n) {
    opt.batch = n;
    const auto ids = generate(*model.decoder, rows + first * D, n, opt);
    for (int i = 0; i < n; ++i) out[first + i] = caption_text(model.files.vocab, ids[i]);
  });
  return out;
}

// "Captions of photos/ more.jpg": the inputs, shortened when they are many.
std::string gallery_title(const std::vector<std::string>& inputs) {
  std::string title = "Captions of";
  for (const auto& in : inputs) {
    if (title.size() > 100) return title + " ...";
    title += " " + in;
  }
  return title;
}

// The inputs a resumed job still has to caption (keys: paths, or image names for features).
std::vector<std::string> not_done(const std::vector<std::string>& keys, CaptionWriter& out, Progress& progress) {
  return resume_todo(keys, [&](const std::string& k) { return out.take_done(k); }, "captioned", progress);
}

// Decode threads -> encoder -> batched beam search -> writer, one batch at a time: memory stays
// flat however many images there are, and captions are written as they come.
int describe_images(const Args& a, const Shard& shard, LoadedModel& model, CaptionWriter& out, HtmlGallery* gallery,
                    Progress& progress) {
  auto paths = take_shard(expand_image_inputs(a.inputs), shard);
  if (paths.empty()) throw InputError(a.inputs.front(), shard.count > 1 ? "no images in shard " + a.shard : "no images found");
  paths = not_done(paths, out, progress);
  if (paths.empty()) {
    out.commit();
    if (gallery) gallery->commit();
    return 0;
  }
  // The encoder gets streams of its own (on the model's memory pool), so that on a GPU the
  // decoding of one batch, host-bound step by step, runs beside the convolutions of the next
  // (encode_images submits batch b before it hands out b - 1).
  Context encoder_ctx(model.ctx->pool());
  auto encoder = load_encoder(encoder_ctx, model.files, a.run);
  if (encoder->feature_dim() != model.files.config.decoder.feature_dim)
    throw InputError(a.model, "the encoder gives " + std::to_string(encoder->feature_dim()) +
                                  "-d features, the decoder expects " +
                                  std::to_string(model.files.config.decoder.feature_dim));
  FailedImages failed(paths.size(), progress);
  int decoder_batch = a.decode.batch;
  bool noted = false;
  size_t done = 0;  // images captioned or failed in this run
  const auto t0 = std::chrono::steady_clock::now();
  encode_images(
      *encoder, paths, a.decode.batch, a.run.threads,
      [&](const EncodedBatch& b) {
        const auto captions = captions_of(model, b.features.data(), int(b.indices.size()), a.decode, decoder_batch);
        note_split(progress, a.decode.batch, b.encoder_batch, decoder_batch, noted);
        for (size_t k = 0; k < b.indices.size(); ++k) {
          const std::string& path = paths[b.indices[k]];
          out.add(std::filesystem::path(path).filename().string(), path, captions[k]);
          if (gallery) gallery->add(path, captions[k], b.thumbnails[k]);
        }
        if (gallery) gallery->flush();  // before the captions: a kill leaves it the images they hold
        out.flush();
        done += b.indices.size();
        progress.update(double(done) / paths.size(), rate_status(done, paths.size(), "images", t0));
      },
      [&](size_t, const std::string& error) {
        ++done;
        failed.add(error);
        if (gallery) gallery->add_failure(error);
      },
      gallery ? HtmlGallery::kThumbnailSide : 0);
  progress.finish_line();
  if (out.count() == 0) failed.throw_nothing_read();
  out.commit();
  if (gallery) gallery->commit();
  failed.summary();
  return failed.count() ? 2 : 0;
}

int describe_features(const Args& a, const Shard& shard, LoadedModel& model, CaptionWriter& out, Progress& progress) {
  FeatureTable features = read_features(a.features);
  const std::string label = features_label(a.features);
  check_features(features, label, model);
  if (!a.images.empty()) features = select_images(features, read_image_list(a.images), a.images);
  if (shard.count > 1) features = select_images(features, take_shard(features.images, shard), label);
  const auto todo = not_done(features.images, out, progress);
  if (todo.size() < features.images.size()) features = select_images(features, todo, label);
  const auto t0 = std::chrono::steady_clock::now();
  const size_t n = features.images.size();
  int decoder_batch = a.decode.batch;
  bool noted = false;
  for (size_t first = 0; first < n; first += a.decode.batch) {
    const int count = int(std::min<size_t>(a.decode.batch, n - first));
    const auto captions = captions_of(model, features.row(first), count, a.decode, decoder_batch);
    note_split(progress, a.decode.batch, a.decode.batch, decoder_batch, noted);
    for (int i = 0; i < count; ++i) out.add(features.images[first + i], "", captions[i]);
    out.flush();
    progress.update(double(first + count) / n, rate_status(first + count, n, "captions", t0));
  }
  progress.finish_line();
  out.commit();
  return 0;
}

}  // namespace

Command add_describe(CLI::App& app) {
  auto* sub = app.add_subcommand("describe", "Caption images (files or precomputed features)");
  auto a = std::make_shared<Args>();
  // As `features`: the CPU encoder's activations take ~17 MiB per 224x224 image, and larger
  // batches are no faster there.
  a->decode.batch = a->run.batch;
  sub->add_option("--model", a->model, "model directory (default: the bundled flickr8k-resnet50c4)");
  sub->add_option("inputs", a->inputs, "image files, folders (recursive) and @list.txt files");
  sub->add_option("--features", a->features,
                  "precomputed image features (.safetensors) instead of images; several files, such as the "
                  "shards of `caption features --shard`, are read as one")
      ->check(CLI::ExistingFile);
  sub->add_option("--images", a->images, "with --features: only these images (one name per line)")
      ->check(CLI::ExistingFile);
  sub->add_option("--beam", a->decode.beam, "beam width (1: greedy)")->capture_default_str();
  sub->add_option("--length-penalty", a->decode.length_penalty,
                  "beam score = sum log p / (words+1)^alpha")->capture_default_str();
  sub->add_option("--batch", a->decode.batch, "images encoded and decoded together")->capture_default_str();
  sub->add_option("--shard", a->shard, "i/n: caption only inputs i, i+n, i+2n, ... (0 <= i < n)")
      ->capture_default_str();
  auto* no_unk = sub->add_flag("--no-unk", "never emit <unk> (rare words)");
  sub->add_option("--output", a->output, "file to write (default: standard output)");
  sub->add_option("--format", a->format, "jsonl or csv")->check(CLI::IsMember({"jsonl", "csv"}))->capture_default_str();
  sub->add_option("--html", a->html, "also write a self-contained HTML gallery (thumbnails + captions)");
  sub->add_flag("--resume", a->resume,
                "continue a job that stopped: keep the captions in OUTPUT.partial (and the gallery in "
                "HTML.partial), caption the rest");
  add_image_run_options(sub, a->run);
  add_device_options(sub, a->device);
  add_graph_option(sub, a->device);
  return {sub, [a, no_unk] {
            a->decode.allow_unk = !*no_unk;
            if (a->decode.beam < 1 || a->decode.batch < 1) throw std::invalid_argument("--beam and --batch must be >= 1");
            if (a->features.empty() == a->inputs.empty())
              throw std::invalid_argument("give image files/folders or --features, not both");
            if (!a->html.empty() && !a->features.empty())
              throw std::invalid_argument("--html needs image inputs (its thumbnails come from the images)");
            if (a->resume && a->output.empty()) throw std::invalid_argument("--resume needs --output");
            const Shard shard = parse_shard(a->shard);
            auto model = load_model(a->model, a->device.parse(), a->device.memory_limit_bytes());
            model.decoder->use_graphs(a->device.cuda_graphs);
            a->decode.max_len = model.files.config.decoder.max_len;
            // A redrawn bar would tangle with captions printed to the same terminal.
            Progress progress(Progress::stderr_is_terminal() && !a->output.empty());
            CaptionWriter out(a->output, a->format == "csv" ? CaptionFormat::Csv : CaptionFormat::Jsonl,
                              a->features.empty(), a->resume);
            // It keeps the images of the captions kept (out.count(), before any is added); its
            // errors come before the job starts, so they are the command's own.
            std::unique_ptr<HtmlGallery> gallery;
            if (!a->html.empty())
              gallery = std::make_unique<HtmlGallery>(a->html, gallery_title(a->inputs), a->resume, out.count());
            try {
              return a->features.empty() ? describe_images(*a, shard, model, out, gallery.get(), progress)
                                         : describe_features(*a, shard, model, out, progress);
            } catch (const std::exception& e) {
              if (!out.saved()) throw;
              throw std::runtime_error(std::string(e.what()) + " (the captions so far are in " + a->output +
                                       ".partial; --resume continues from there)");
            }
          }};
}

}  // namespace caption::cli
