#include "model/trainer.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_set>

#include "kernels/adam.h"
#include "kernels/grad_norm.h"
#include "model/atomic_file.h"
#include "model/caption_dataset.h"
#include "model/glove.h"
#include "model/model_dir.h"
#include "model/read_file.h"
#include "model/safetensors.h"
#include "runtime/context.h"
#include "runtime/error.h"

namespace caption {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Checkpoint {
  int epoch = 0;       // epochs completed
  uint64_t step = 0;   // optimizer steps taken
  double best_val = INFINITY;
  std::vector<float> params, m, v;
};

Tensor flat_tensor(const std::vector<float>& v) {
  Tensor t;
  t.shape = {int64_t(v.size())};
  t.data = v;
  return t;
}

void save_checkpoint(const std::string& path, const Checkpoint& c, uint64_t seed) {
  Tensor p = flat_tensor(c.params), m = flat_tensor(c.m), v = flat_tensor(c.v);
  std::ostringstream best;
  best.precision(17);
  best << c.best_val;
  write_safetensors(path, {{"params", &p}, {"adam.m", &m}, {"adam.v", &v}},
                    {{"format", "caption-checkpoint/1"},
                     {"epoch", std::to_string(c.epoch)},
                     {"step", std::to_string(c.step)},
                     {"seed", std::to_string(seed)},
                     {"best_val_loss", best.str()}});
}

Checkpoint load_checkpoint(const std::string& path, size_t num_params, uint64_t seed) {
  auto file = read_safetensors(path);
  auto meta = [&](const std::string& key) {
    auto it = file.metadata.find(key);
    if (it == file.metadata.end()) throw InputError(path, "checkpoint metadata lacks '" + key + "'");
    return it->second;
  };
  // The whole value must be a number of the field's type ("inf" and "nan" too for the loss).
  auto number = [&](const std::string& key, auto value) {
    const std::string text = meta(key);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size())
      throw InputError(path, "checkpoint metadata '" + key + "' is not a number of its kind: '" + text + "'");
    return value;
  };
  if (meta("format") != "caption-checkpoint/1") throw InputError(path, "not a caption checkpoint");
  if (number("seed", uint64_t()) != seed)
    throw InputError(path, "checkpoint was made with --seed " + meta("seed") + "; resume with the same seed");
  Checkpoint c;
  c.epoch = number("epoch", int());
  c.step = number("step", uint64_t());
  c.best_val = number("best_val_loss", double());
  if (c.epoch < 0) throw InputError(path, "checkpoint metadata 'epoch' is negative");
  for (auto [name, dst] : {std::pair{"params", &c.params}, {"adam.m", &c.m}, {"adam.v", &c.v}}) {
    auto it = file.tensors.find(name);
    if (it == file.tensors.end() || it->second.data.size() != num_params)
      throw InputError(path, std::string("tensor '") + name + "' is missing or does not fit this model");
    *dst = std::move(it->second.data);
  }
  return c;
}

// Rows of the embedding for words GloVe knows; returns how many it covered.
size_t apply_glove(const GloveVectors& glove, const Vocabulary& vocab, const ParamSpec& embed,
                   std::vector<float>& flat, const std::string& path) {
  const int E = int(embed.shape[1]);
  if (glove.dim != E)
    throw InputError(path, "vectors have " + std::to_string(glove.dim) + " dimensions, the embedding has " +
                               std::to_string(E));
  size_t covered = 0;
  for (int32_t id = Vocabulary::kUnk + 1; id < vocab.size(); ++id) {
    auto it = glove.vectors.find(vocab.word(id));
    if (it == glove.vectors.end()) continue;
    std::copy(it->second.begin(), it->second.end(), flat.begin() + embed.offset + size_t(id) * E);
    ++covered;
  }
  return covered;
}

nlohmann::json metrics_json(const EpochMetrics& m) {
  return {{"epoch", m.epoch},          {"train_loss", m.train_loss}, {"val_loss", m.val_loss},
          {"tokens_per_s", m.tokens_per_s}, {"seconds", m.seconds},     {"train_tokens", m.train_tokens},
          {"best", m.best}};
}

// metrics.jsonl lines of epochs up to `epochs` (those the checkpoint covers).
std::vector<std::string> read_metrics(const std::string& path, int epochs) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("epoch") && j["epoch"].is_number_integer() && j["epoch"].get<int64_t>() <= epochs)
      lines.push_back(line);
  }
  return lines;
}

// The encoder of opt.encoder_dir, its weights copied into opt.out, so that the trained model
// reads images itself. It must be the encoder that made the features (same dimension).
EncoderConfig adopt_encoder(const TrainOptions& opt, int feature_dim) {
  const std::string config_path = join_path(opt.encoder_dir, "config.json");
  const ModelConfig source = load_model_config(config_path);
  if (!source.encoder) throw InputError(config_path, "has no \"encoder\" object (--encoder needs one)");
  if (source.encoder->feature_dim() != feature_dim)
    throw InputError(features_label(opt.features), "features are " + std::to_string(feature_dim) +
                                                       "-d but the encoder of " + opt.encoder_dir + " gives " +
                                                       std::to_string(source.encoder->feature_dim()) + "-d");
  const std::string from = join_path(opt.encoder_dir, source.encoder->weights);
  const std::string to = join_path(opt.out, source.encoder->weights);
  std::error_code ec;
  std::filesystem::create_directories(opt.out, ec);
  if (ec) throw InputError(opt.out, "cannot create directory: " + ec.message());
  if (!std::filesystem::equivalent(from, to, ec)) write_file_atomic(to, read_file(from));
  return *source.encoder;
}

// Caption indices of `data`, longest first.
std::vector<size_t> longest_first(const CaptionDataset& data) {
  std::vector<size_t> idx(data.tokens.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(),
                   [&](size_t a, size_t b) { return data.tokens[a].size() > data.tokens[b].size(); });
  return idx;
}

// Runs the largest batches (the `batch` longest captions; training and validation) once
// before training, without an optimizer update (gradients are overwritten by every step):
// their workspace then stays allocated for the whole run, and a batch too large for the
// device fails here, with the batch size that does fit, instead of mid-epoch.
void check_batch_fits(Context& ctx, Decoder& dec, const CaptionDataset& train, const CaptionDataset& val,
                      const FeatureTable& features, const TrainOptions& opt) {
  const auto idx = longest_first(train), val_idx = longest_first(val);
  const size_t n = std::min(idx.size(), size_t(opt.batch));
  auto fits = [&](int b) {
    try {
      dec.train_step(make_batch(train, features, idx.data(), b), opt.dropout, opt.seed, 0);
      if (!val_idx.empty()) dec.evaluate(make_batch(val, features, val_idx.data(), std::min(b, int(val_idx.size()))));
      return true;
    } catch (const OutOfMemory&) {
      dec.release_workspace();  // the next try starts as a fresh run would
      ctx.pool().release_unused();
      return false;
    }
  };
  if (fits(int(n))) return;
  // Halve until a batch fits, then bisect up to the largest that does.
  int smaller = int(n) / 2, too_big = int(n);
  while (smaller > 0 && !fits(smaller)) too_big = smaller, smaller /= 2;
  while (smaller > 0 && too_big - smaller > 1) {
    const int mid = (smaller + too_big) / 2;
    (fits(mid) ? smaller : too_big) = mid;
  }
  const size_t limit = opt.memory_limit;
  throw std::runtime_error(
      std::string("out of ") + device_name(opt.device) + " memory for a batch of " + std::to_string(n) +
      " captions of up to " + std::to_string(train.tokens[idx[0]].size()) + " tokens" +
      (limit ? " (--memory-limit " + std::to_string(limit >> 20) + " MiB)" : "") + ": " +
      (smaller ? "--batch " + std::to_string(smaller) + " fits" : "not even one caption fits beside the model"));
}

// Training cannot go on once `what` (the loss, the parameters) is not finite; nothing of the
// current epoch is saved, so the last checkpoint stays as it was.
std::runtime_error non_finite(const std::string& what, int epoch, const Checkpoint& ck) {
  return std::runtime_error(what + " became non-finite at epoch " + std::to_string(epoch) + ", step " +
                            std::to_string(ck.step) + "; " +
                            (ck.epoch ? "the checkpoint of epoch " + std::to_string(ck.epoch) + " is kept"
                                      : std::string("no checkpoint was written")) +
                            " (try a lower --lr or --clip)");
}

bool all_finite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

}  // namespace

void train(const TrainOptions& opt, TrainObserver& obs) {
  if (opt.epochs < 1 || opt.batch < 1 || opt.max_len < 3 || opt.min_count < 1 || !(opt.lr > 0) ||
      opt.dropout < 0 || opt.dropout >= 1)
    throw std::invalid_argument("invalid training options (epochs, batch >= 1; max-len >= 3; 0 <= dropout < 1)");
  const std::string ckpt_path = join_path(opt.out, "checkpoint.safetensors");
  const std::string metrics_path = join_path(opt.out, "metrics.jsonl");
  const bool resuming = opt.resume && std::filesystem::exists(ckpt_path);
  if (opt.resume && !resuming) obs.message("no checkpoint in " + opt.out + ": starting from scratch");

  auto records = read_captions(opt.captions);
  auto train_images = read_image_list(opt.train_list);
  auto val_images = read_image_list(opt.val_list);
  FeatureTable features = read_features(opt.features);

  ModelConfig config;
  Vocabulary vocab;
  if (resuming) {
    config = load_model_config(join_path(opt.out, "config.json"));
    vocab = Vocabulary::load(join_path(opt.out, config.decoder.vocab));
    if (config.decoder.feature_dim != features.dim)
      throw InputError(features_label(opt.features), "features are " + std::to_string(features.dim) +
                                                         "-d, the checkpoint's model " +
                                                         std::to_string(config.decoder.feature_dim) + "-d");
  } else {
    std::unordered_set<std::string> train_set(train_images.begin(), train_images.end());
    std::vector<std::vector<std::string>> cleaned;
    for (const auto& r : records)
      if (train_set.count(r.image)) cleaned.push_back(clean_caption(r.text));
    if (cleaned.empty()) throw InputError(opt.train_list, "no training captions for these images");
    vocab = Vocabulary::build(cleaned, opt.min_count);
    config.decoder.feature_dim = features.dim;
    config.decoder.max_len = opt.max_len;
    config.decoder.dropout = opt.dropout;
    if (!opt.encoder_dir.empty()) config.encoder = adopt_encoder(opt, features.dim);
  }
  obs.message("vocabulary: " + std::to_string(vocab.size()) + " tokens (min count " + std::to_string(opt.min_count) + ")");

  const int max_len = config.decoder.max_len;
  CaptionDataset train_data = build_dataset(records, train_images, features, vocab, max_len);
  CaptionDataset val_data = build_dataset(records, val_images, features, vocab, max_len);
  if (train_data.tokens.empty()) throw InputError(features_label(opt.features), "no features for any training image");
  obs.message("train: " + std::to_string(train_data.tokens.size()) + " captions of " +
              std::to_string(train_data.images) + " images; val: " + std::to_string(val_data.tokens.size()) +
              " captions of " + std::to_string(val_data.images) + " images" +
              (train_data.missing_features + val_data.missing_features
                   ? " (" + std::to_string(train_data.missing_features + val_data.missing_features) +
                         " captions skipped: image not in the features file)"
                   : ""));

  Context ctx(opt.device, opt.memory_limit);
  Decoder dec(ctx, {features.dim, config.decoder.embed_dim, config.decoder.hidden_dim, vocab.size()});
  dec.use_graphs(opt.cuda_graphs);
  PoolBuffer<float> m(ctx.pool(), dec.num_params(), ctx.exec().stream);
  PoolBuffer<float> v(ctx.pool(), dec.num_params(), ctx.exec().stream);
  Checkpoint ck;
  std::vector<std::string> metrics_lines;
  if (resuming) {
    ck = load_checkpoint(ckpt_path, dec.num_params(), opt.seed);
    dec.set_flat(ck.params, dec.params());
    dec.set_flat(ck.m, m.data());
    dec.set_flat(ck.v, v.data());
    metrics_lines = read_metrics(metrics_path, ck.epoch);
    obs.message("resuming after epoch " + std::to_string(ck.epoch) + " (step " + std::to_string(ck.step) + ")");
  } else {
    auto flat = decoder_init(dec.dims(), opt.seed);
    if (!opt.glove.empty()) {
      size_t covered = apply_glove(read_glove(opt.glove), vocab, dec.specs()[2], flat, opt.glove);
      size_t words = size_t(vocab.size()) - 4;
      obs.message("GloVe: " + std::to_string(covered) + "/" + std::to_string(words) + " words initialised (" +
                  std::to_string(words ? 100.0 * covered / words : 0.0).substr(0, 5) + "%)");
    }
    dec.set_flat(flat, dec.params());
    ctx.zero(m.data(), dec.num_params() * sizeof(float));
    ctx.zero(v.data(), dec.num_params() * sizeof(float));
  }

  check_batch_fits(ctx, dec, train_data, val_data, features, opt);
  AdamConfig adam;
  adam.lr = opt.lr;
  const Exec ex = ctx.exec();
  for (int epoch = ck.epoch + 1; epoch <= opt.epochs; ++epoch) {
    auto t0 = Clock::now();
    auto batches = epoch_batches(train_data, opt.batch, opt.seed, epoch);
    LossSum total;
    for (size_t i = 0; i < batches.size(); ++i) {
      TokenBatch b = make_batch(train_data, features, batches[i].data(), int(batches[i].size()));
      LossSum s = dec.train_step(b, opt.dropout, opt.seed, ck.step);
      if (!std::isfinite(s.sum)) throw non_finite("loss", epoch, ck);
      if (opt.clip > 0) clip_grad_norm(ex, dec.grads(), dec.num_params(), opt.clip);
      adam_step(ex, dec.params(), dec.grads(), m.data(), v.data(), dec.num_params(), adam, long(++ck.step));
      total.sum += s.sum;
      total.count += s.count;
      double el = seconds_since(t0);
      obs.step({epoch, opt.epochs, i + 1, batches.size(), total.sum / std::max<int64_t>(1, total.count),
                total.count / std::max(el, 1e-9), el / (i + 1) * (batches.size() - i - 1)});
    }
    ctx.synchronize();
    double seconds = seconds_since(t0);
    LossSum val = evaluate(dec, val_data, features, opt.batch);
    EpochMetrics em{epoch,
                    total.sum / std::max<int64_t>(1, total.count),
                    val.count ? val.sum / val.count : NAN,
                    total.count / seconds,
                    seconds,
                    total.count,
                    false};
    em.best = !(em.val_loss >= ck.best_val);  // NaN val (no val captions) keeps the latest
    if (em.best) ck.best_val = em.val_loss;
    // The loss can stay finite while some parameters are not (a ReLU or a max turns a NaN input
    // into a number), so the parameters are checked too before they replace the checkpoint.
    std::vector<float> params = dec.get_flat(dec.params()), moment1 = dec.get_flat(m.data()),
                       moment2 = dec.get_flat(v.data());
    if (!all_finite(params) || !all_finite(moment1) || !all_finite(moment2))
      throw non_finite("parameters", epoch, ck);
    ck.epoch = epoch;
    ck.params = std::move(params);
    ck.m = std::move(moment1);
    ck.v = std::move(moment2);
    // The checkpoint last: a run killed before it resumes from the one before and runs this
    // epoch again, rewriting the model files and the metrics line; a checkpoint written before
    // them would resume past them, and a kill in between would lose this epoch's best weights.
    std::error_code ec;
    std::filesystem::create_directories(opt.out, ec);
    if (ec) throw InputError(opt.out, "cannot create directory: " + ec.message());
    if (em.best) save_model_dir(opt.out, config, vocab, dec.state_dict());
    metrics_lines.push_back(metrics_json(em).dump());
    std::string text;
    for (const auto& l : metrics_lines) text += l + "\n";
    write_file_atomic(metrics_path, text);
    save_checkpoint(ckpt_path, ck, opt.seed);
    obs.epoch(em);
  }
}

}  // namespace caption
