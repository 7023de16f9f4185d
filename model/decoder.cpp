#include "model/decoder.h"

#include <cmath>
#include <cstring>
#include <random>
#include <utility>

#include "kernels/beam_topk.h"
#include "kernels/broadcast_add.h"
#include "kernels/dense.h"
#include "kernels/dropout.h"
#include "kernels/embedding.h"
#include "kernels/lstm.h"
#include "kernels/softmax_xent.h"
#include "model/safetensors.h"
#include "runtime/host_buffer.h"
#include "runtime/error.h"

namespace caption {
namespace {

// Indices into specs(), in state-dict order.
enum Param { kImgW, kImgB, kEmbed, kWih, kWhh, kBih, kBhh, kFcW, kFcB, kOutW, kOutB };

// First element of a graph key: which op sequence it is.
enum GraphKind : int64_t { kDecodeStepGraph, kSearchStepGraph, kTrainStepGraph };

// Counter offsets for the two dropout sites: disjoint Philox streams per step and site.
uint64_t dropout_offset(uint64_t step, int site) { return (step * 2 + site) << 32; }

}  // namespace

std::vector<ParamSpec> decoder_param_specs(const DecoderDims& d) {
  const int64_t D = d.feature_dim, E = d.embed_dim, H = d.hidden_dim, V = d.vocab_size;
  std::vector<ParamSpec> specs = {
      {"img_fc.weight", {H, D}, 0, 0},       {"img_fc.bias", {H}, 0, 0},
      {"embed.weight", {V, E}, 0, 0},        {"lstm.weight_ih_l0", {4 * H, E}, 0, 0},
      {"lstm.weight_hh_l0", {4 * H, H}, 0, 0}, {"lstm.bias_ih_l0", {4 * H}, 0, 0},
      {"lstm.bias_hh_l0", {4 * H}, 0, 0},    {"fc.weight", {H, H}, 0, 0},
      {"fc.bias", {H}, 0, 0},                {"out.weight", {V, H}, 0, 0},
      {"out.bias", {V}, 0, 0}};
  size_t offset = 0;
  for (auto& s : specs) {
    s.numel = 1;
    for (auto n : s.shape) s.numel *= size_t(n);
    s.offset = offset;
    offset += (s.numel + 63) / 64 * 64;  // 256-byte aligned tensors for vector loads
  }
  return specs;
}

std::vector<float> decoder_init(const DecoderDims& d, uint64_t seed) {
  auto specs = decoder_param_specs(d);
  std::vector<float> flat(specs.back().offset + specs.back().numel, 0.f);
  std::mt19937_64 rng(seed);
  auto uniform = [&](const ParamSpec& s, double bound) {
    std::uniform_real_distribution<float> u(-float(bound), float(bound));
    for (size_t i = 0; i < s.numel; ++i) flat[s.offset + i] = u(rng);
  };
  const double lin_img = 1 / std::sqrt(double(d.feature_dim)), lin_h = 1 / std::sqrt(double(d.hidden_dim));
  uniform(specs[kImgW], lin_img);
  uniform(specs[kImgB], lin_img);
  std::normal_distribution<float> normal(0.f, 1.f);
  const auto& emb = specs[kEmbed];
  for (size_t i = 0; i < emb.numel; ++i) flat[emb.offset + i] = i < size_t(d.embed_dim) ? 0.f : normal(rng);
  for (int p : {kWih, kWhh, kBih, kBhh, kFcW, kFcB, kOutW, kOutB}) uniform(specs[p], lin_h);
  return flat;
}

struct Decoder::Workspace {
  int B = 0, T = 0;  // capacity
  PoolBuffer<float> features, feat_drop, a, da, emb, demb, h, c, gates, m, mc, z, dz, logits, loss, lse;
  PoolBuffer<int32_t> inputs, targets, rows;  // rows: output row r is position rows[r] of [B*T]
  // A training step's scalars, read by the kernels from memory so that a captured step replays
  // with each step's values: the two dropout sites' counter offsets and the loss mean's 1/rows.
  PoolBuffer<uint64_t> dropout_offsets;
  PoolBuffer<float> loss_scale;
  // inference
  int iB = 0;
  PoolBuffer<float> ia, ih, ic, ih2, ix, igates, im, iz, ilogits, ilse, itop_logp;
  PoolBuffer<int32_t> itokens, itop_tokens;  // itokens: [tokens B | parents B]; itop_*: [B,k], grown on demand
  HostBuffer io;  // search_step's transfers (pinned on CUDA), grown on demand
};

Decoder::Decoder(Context& ctx, const DecoderDims& dims)
    : ctx_(ctx), dims_(dims), specs_(decoder_param_specs(dims)), ws_(std::make_unique<Workspace>()) {
  num_params_ = specs_.back().offset + specs_.back().numel;
  params_ = PoolBuffer<float>(ctx.pool(), num_params_, ctx.exec().stream);
  grads_ = PoolBuffer<float>(ctx.pool(), num_params_, ctx.exec().stream);
  ctx.zero(params_.data(), num_params_ * sizeof(float));
  ctx.zero(grads_.data(), num_params_ * sizeof(float));
}

Decoder::~Decoder() = default;

void Decoder::release_workspace() {
  if (graphs_) graphs_->clear();  // they use the buffers being freed
  ws_ = std::make_unique<Workspace>();
}

void Decoder::use_graphs(bool on) {
  if (!on || ctx_.device() != Device::CUDA) graphs_.reset();
  else if (!graphs_) graphs_ = std::make_unique<GraphCache>(ctx_);
  pad_rows_ = graphs_ != nullptr;
}

void Decoder::set_flat(const std::vector<float>& host, float* dst) {
  if (host.size() != num_params_) throw std::logic_error("decoder: flat parameter size mismatch");
  ctx_.upload(dst, host.data(), host.size() * sizeof(float));
}

std::vector<float> Decoder::get_flat(const float* src) const {
  std::vector<float> host(num_params_);
  ctx_.download(host.data(), src, host.size() * sizeof(float));
  return host;
}

void Decoder::load(const std::map<std::string, Tensor>& tensors, const std::string& source) {
  std::vector<float> flat(num_params_, 0.f);
  for (const auto& s : specs_) {
    const Tensor& t = find_tensor(tensors, s.name, s.shape, source);
    std::copy(t.data.begin(), t.data.end(), flat.begin() + s.offset);
  }
  set_flat(flat, params_.data());
}

std::map<std::string, Tensor> Decoder::state_dict() const {
  auto flat = get_flat(params_.data());
  std::map<std::string, Tensor> out;
  for (const auto& s : specs_) {
    Tensor t;
    t.shape = s.shape;
    t.data.assign(flat.begin() + s.offset, flat.begin() + s.offset + s.numel);
    out.emplace(s.name, std::move(t));
  }
  return out;
}

void Decoder::ensure_workspace(int B, int T) {
  Workspace& w = *ws_;
  if (B <= w.B && T <= w.T) return;
  if (graphs_) graphs_->clear();  // they use the buffers being replaced
  B = std::max(B, w.B);
  T = std::max(T, w.T);
  const size_t D = dims_.feature_dim, E = dims_.embed_dim, H = dims_.hidden_dim, V = dims_.vocab_size;
  const size_t N = size_t(B) * T;
  MemoryPool& pool = ctx_.pool();
  Stream st = ctx_.exec().stream;
  w.B = w.T = 0;  // if an allocation below runs out of memory, the next call starts afresh
  auto f = [&](PoolBuffer<float>& b, size_t n) { b = PoolBuffer<float>(); b = PoolBuffer<float>(pool, n, st); };
  auto i = [&](PoolBuffer<int32_t>& b, size_t n) { b = PoolBuffer<int32_t>(); b = PoolBuffer<int32_t>(pool, n, st); };
  f(w.features, B * D), f(w.feat_drop, B * D), f(w.a, B * H), f(w.da, B * H);
  f(w.emb, N * E), f(w.demb, N * E), f(w.h, N * H), f(w.c, N * H), f(w.gates, N * 4 * H);
  f(w.m, N * H), f(w.mc, N * H), f(w.z, N * H), f(w.dz, N * H), f(w.logits, N * V), f(w.loss, N), f(w.lse, N);
  i(w.inputs, N), i(w.targets, N), i(w.rows, N);
  w.dropout_offsets = PoolBuffer<uint64_t>(pool, 2, st);
  w.loss_scale = PoolBuffer<float>(pool, 1, st);
  ctx_.zero(w.dropout_offsets.data(), 2 * sizeof(uint64_t));
  ctx_.zero(w.loss_scale.data(), sizeof(float));
  w.B = B;
  w.T = T;
}

Decoder::BatchRows Decoder::upload_batch(const TokenBatch& batch, bool compact, int row_multiple) {
  const int B = batch.B, T = batch.T, D = dims_.feature_dim;
  if (batch.features.size() != size_t(B) * D || batch.tokens.size() != size_t(B) * (T + 1))
    throw std::logic_error("decoder: batch buffers do not match B/T");
  ensure_workspace(B, T);
  std::vector<int32_t> inputs(size_t(B) * T), targets, rows;
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t) {
      int32_t in = batch.tokens[size_t(b) * (T + 1) + t], out = batch.tokens[size_t(b) * (T + 1) + t + 1];
      if (in < 0 || in >= dims_.vocab_size || out < 0 || out >= dims_.vocab_size)
        throw std::out_of_range("decoder: token id outside the vocabulary");
      inputs[size_t(b) * T + t] = in;
      if (compact && out == 0) continue;
      targets.push_back(out);
      rows.push_back(b * T + t);
    }
  const BatchRows n{int(rows.size()), (int(rows.size()) + row_multiple - 1) / row_multiple * row_multiple};
  // Padding rows: position 0 with target <pad>, which the loss and its gradient ignore.
  rows.resize(n.padded, 0);
  targets.resize(n.padded, 0);
  Workspace& w = *ws_;
  ctx_.upload(w.features.data(), batch.features.data(), batch.features.size() * sizeof(float));
  ctx_.upload(w.inputs.data(), inputs.data(), inputs.size() * sizeof(int32_t));
  ctx_.upload(w.targets.data(), targets.data(), targets.size() * sizeof(int32_t));
  ctx_.upload(w.rows.data(), rows.data(), rows.size() * sizeof(int32_t));
  return n;
}

void Decoder::forward(int B, int T, int rows, float p, uint64_t seed) {
  const Exec ex = ctx_.exec();
  Workspace& w = *ws_;
  const int D = dims_.feature_dim, E = dims_.embed_dim, H = dims_.hidden_dim, V = dims_.vocab_size;
  const int N = B * T;
  const uint64_t* offsets = w.dropout_offsets.data();
  dropout_forward(ex, w.features.data(), w.feat_drop.data(), size_t(B) * D, p, seed, 0, offsets);
  dense_forward(ex, w.feat_drop.data(), at(kImgW), at(kImgB), w.a.data(), B, H, D, Activation::ReLU);
  embedding_forward(ex, at(kEmbed), w.inputs.data(), N, E, w.emb.data());
  dropout_forward(ex, w.emb.data(), w.emb.data(), size_t(N) * E, p, seed, 0, offsets + 1);
  lstm_forward(ex, {B, T, E, H}, w.emb.data(), {at(kWih), at(kWhh), at(kBih), at(kBhh)},
               {w.h.data(), w.c.data(), w.gates.data()});
  broadcast_add(ex, w.h.data(), w.a.data(), w.m.data(), B, T, H);
  // The output layers see only the rows that have a target (a row gather is an embedding lookup).
  embedding_forward(ex, w.m.data(), w.rows.data(), rows, H, w.mc.data());
  dense_forward(ex, w.mc.data(), at(kFcW), at(kFcB), w.z.data(), rows, H, H, Activation::ReLU);
  dense_forward(ex, w.z.data(), at(kOutW), at(kOutB), w.logits.data(), rows, V, H, Activation::None);
  softmax_xent_forward(ex, w.logits.data(), w.targets.data(), rows, V, w.loss.data(), w.lse.data());
}

LossSum Decoder::sum_loss(BatchRows rows) {
  std::vector<float> loss(rows.padded);
  ctx_.download(loss.data(), ws_->loss.data(), loss.size() * sizeof(float));
  LossSum s;
  for (float l : loss) s.sum += l;  // padding rows add 0
  s.count = rows.real;  // compact rows: every real one has a target
  return s;
}

void Decoder::backward(int B, int T, int rows, float p, uint64_t seed) {
  const Exec ex = ctx_.exec();
  Workspace& w = *ws_;
  const int D = dims_.feature_dim, E = dims_.embed_dim, H = dims_.hidden_dim, V = dims_.vocab_size;
  const int N = B * T;
  // Mean over the target rows; the logits buffer becomes its own gradient.
  softmax_xent_backward(ex, w.logits.data(), w.targets.data(), w.lse.data(), rows, V, 0.f, w.logits.data(),
                        w.loss_scale.data());
  dense_backward(ex, w.z.data(), at(kOutW), w.logits.data(), w.logits.data(), w.dz.data(), grad(kOutW),
                 grad(kOutB), rows, V, H, Activation::None);
  dense_backward(ex, w.mc.data(), at(kFcW), w.z.data(), w.dz.data(), w.mc.data(), grad(kFcW), grad(kFcB), rows,
                 H, H, Activation::ReLU);
  // Scatter back to [B*T] with zero rows at padding: the backward of a gather is an
  // embedding backward over positions (no padding id: -1).
  embedding_backward(ex, w.mc.data(), w.rows.data(), rows, H, N, -1, w.m.data());
  // The image branch takes d(h + a) summed over time before the LSTM backward clobbers it.
  broadcast_add_backward(ex, w.m.data(), w.da.data(), B, T, H);
  lstm_backward(ex, {B, T, E, H}, w.emb.data(), {at(kWih), at(kWhh), at(kBih), at(kBhh)},
                {w.h.data(), w.c.data(), w.gates.data()}, w.m.data(), w.demb.data(),
                {grad(kWih), grad(kWhh), grad(kBih), grad(kBhh)});
  dropout_backward(ex, w.demb.data(), w.demb.data(), size_t(N) * E, p, seed, 0, w.dropout_offsets.data() + 1);
  embedding_backward(ex, w.demb.data(), w.inputs.data(), N, E, V, 0, grad(kEmbed));
  dense_backward(ex, w.feat_drop.data(), at(kImgW), w.a.data(), w.da.data(), nullptr, grad(kImgW),
                 grad(kImgB), B, H, D, Activation::ReLU);
}

LossSum Decoder::train_step(const TokenBatch& batch, float dropout, uint64_t seed, uint64_t step) {
  // A captured step is reused for every batch of its (B, T) whose output rows round up to the
  // same multiple of B (the rows of one timestep); the padding rows cost output-layer work.
  const BatchRows rows = upload_batch(batch, true, pad_rows_ ? batch.B : 1);
  Workspace& w = *ws_;
  const uint64_t offsets[2] = {dropout_offset(step, 0), dropout_offset(step, 1)};
  const float scale = rows.real > 0 ? 1.f / float(rows.real) : 0.f;  // the mean over real targets
  ctx_.upload(w.dropout_offsets.data(), offsets, sizeof(offsets));
  ctx_.upload(w.loss_scale.data(), &scale, sizeof(scale));
  auto ops = [&] {
    forward(batch.B, batch.T, rows.padded, dropout, seed);
    backward(batch.B, batch.T, rows.padded, dropout, seed);
  };
  if (graphs_) {
    int64_t p_bits = 0;
    std::memcpy(&p_bits, &dropout, sizeof(dropout));
    graphs_->run({kTrainStepGraph, batch.B, batch.T, rows.padded, p_bits, int64_t(seed)}, ops);
  } else {
    ops();
  }
  // The loss comes back after the backward is queued, so the device never waits for the host.
  return sum_loss(rows);
}

LossSum Decoder::evaluate(const TokenBatch& batch) {
  const BatchRows rows = upload_batch(batch, true);
  forward(batch.B, batch.T, rows.padded, 0.f, 0);
  return sum_loss(rows);
}

std::vector<float> Decoder::forward_logits(const TokenBatch& batch) {
  const BatchRows rows = upload_batch(batch, false);
  forward(batch.B, batch.T, rows.padded, 0.f, 0);
  std::vector<float> logits(size_t(rows.padded) * dims_.vocab_size);
  ctx_.download(logits.data(), ws_->logits.data(), logits.size() * sizeof(float));
  return logits;
}

Decoder::StepState Decoder::begin_inference(const float* features, int B) {
  Workspace& w = *ws_;
  const size_t D = dims_.feature_dim, E = dims_.embed_dim, H = dims_.hidden_dim, V = dims_.vocab_size;
  if (B > w.iB) {
    if (graphs_) graphs_->clear();  // they use the buffers being replaced
    MemoryPool& pool = ctx_.pool();
    Stream st = ctx_.exec().stream;
    for (auto* b : {&w.ia, &w.ih, &w.ic, &w.ih2, &w.im, &w.iz}) *b = PoolBuffer<float>(pool, B * H, st);
    w.ix = PoolBuffer<float>(pool, B * std::max(E, D), st);
    w.igates = PoolBuffer<float>(pool, B * 4 * H, st);
    w.ilogits = PoolBuffer<float>(pool, B * V, st);
    w.ilse = PoolBuffer<float>(pool, B, st);
    w.itokens = PoolBuffer<int32_t>(pool, 2 * size_t(B), st);
    w.iB = B;
  }
  ctx_.upload(w.ix.data(), features, B * D * sizeof(float));
  dense_forward(ctx_.exec(), w.ix.data(), at(kImgW), at(kImgB), w.ia.data(), B,
                int(H), int(D), Activation::ReLU);
  ctx_.zero(w.ih.data(), B * H * sizeof(float));
  ctx_.zero(w.ic.data(), B * H * sizeof(float));
  return StepState{B, w.ia.data(), w.ih.data(), w.ic.data(), w.ilogits.data(), w.ilse.data()};
}

void Decoder::step_ops(const StepState& s) {
  const Exec ex = ctx_.exec();
  Workspace& w = *ws_;
  const int E = dims_.embed_dim, H = dims_.hidden_dim, V = dims_.vocab_size, B = s.B;
  embedding_forward(ex, at(kEmbed), w.itokens.data(), B, E, w.ix.data());
  lstm_step(ex, B, E, H, w.ix.data(), {at(kWih), at(kWhh), at(kBih), at(kBhh)}, s.h, s.c, w.igates.data());
  broadcast_add(ex, s.h, s.a, w.im.data(), B, 1, H);
  dense_forward(ex, w.im.data(), at(kFcW), at(kFcB), w.iz.data(), B, H, H, Activation::ReLU);
  dense_forward(ex, w.iz.data(), at(kOutW), at(kOutB), s.logits, B, V, H, Activation::None);
  logsumexp_rows(ex, s.logits, B, V, s.lse);
}

void Decoder::gather_state(const StepState& s) {
  // A row gather is an embedding lookup with the state as the table.
  Workspace& w = *ws_;
  const int H = dims_.hidden_dim;
  for (float* state : {s.h, s.c}) {
    embedding_forward(ctx_.exec(), state, w.itokens.data() + s.B, s.B, H, w.ih2.data());
    ctx_.copy(state, w.ih2.data(), size_t(s.B) * H * sizeof(float));
  }
}

void Decoder::ensure_top_buffers(size_t n) {
  Workspace& w = *ws_;
  if (n <= w.itop_tokens.size() && n <= w.itop_logp.size()) return;
  if (graphs_) graphs_->clear();  // they use the buffers being replaced
  // Both allocated before either is replaced: running out of memory for the second (describe
  // then retries with smaller pieces) leaves the pair as it was, never one of them short.
  PoolBuffer<int32_t> tokens(ctx_.pool(), n, ctx_.exec().stream);
  PoolBuffer<float> logp(ctx_.pool(), n, ctx_.exec().stream);
  w.itop_tokens = std::move(tokens);
  w.itop_logp = std::move(logp);
}

// The graph key of an inference op sequence: the workspace buffers are fixed for a batch size
// (begin_inference and ensure_top_buffers clear the graphs when they replace them), the state's
// may be the caller's.
GraphCache::Key Decoder::inference_key(int64_t kind, const StepState& s, std::initializer_list<int64_t> more) {
  auto addr = [](const void* p) { return int64_t(reinterpret_cast<intptr_t>(p)); };
  GraphCache::Key key{kind, s.B, addr(s.a), addr(s.h), addr(s.c), addr(s.logits), addr(s.lse)};
  key.insert(key.end(), more);
  return key;
}

void Decoder::step(StepState& s, const int32_t* tokens) {
  ctx_.upload(ws_->itokens.data(), tokens, s.B * sizeof(int32_t));
  if (!graphs_) return step_ops(s);
  graphs_->run(inference_key(kDecodeStepGraph, s, {}), [&] { step_ops(s); });
}

void Decoder::logprobs(const StepState& s, std::vector<float>& out) {
  const int V = dims_.vocab_size;
  out.resize(size_t(s.B) * V);
  std::vector<float> lse(s.B);
  ctx_.download(out.data(), s.logits, out.size() * sizeof(float));
  ctx_.download(lse.data(), s.lse, lse.size() * sizeof(float));
  for (int b = 0; b < s.B; ++b)
    for (int v = 0; v < V; ++v) out[size_t(b) * V + v] -= lse[b];
}

void Decoder::top_tokens(const StepState& s, int k, int32_t first_allowed, int32_t banned,
                         std::vector<int32_t>& tokens, std::vector<float>& logp) {
  Workspace& w = *ws_;
  const size_t n = size_t(s.B) * std::max(k, 0);
  ensure_top_buffers(n);
  beam_topk(ctx_.exec(), s.logits, s.lse, s.B, dims_.vocab_size, k, first_allowed, banned, w.itop_tokens.data(),
            w.itop_logp.data());
  tokens.resize(n);
  logp.resize(n);
  ctx_.download(tokens.data(), w.itop_tokens.data(), n * sizeof(int32_t));
  ctx_.download(logp.data(), w.itop_logp.data(), n * sizeof(float));
}

void Decoder::reorder(StepState& s, const int32_t* parent) {
  ctx_.upload(ws_->itokens.data() + s.B, parent, s.B * sizeof(int32_t));
  gather_state(s);
}

void Decoder::search_step(StepState& s, const int32_t* parent, const int32_t* tokens, int k, int32_t first_allowed,
                          int32_t banned, std::vector<int32_t>& top_tokens, std::vector<float>& top_logp) {
  Workspace& w = *ws_;
  const int B = s.B;
  beam_topk_check(B, dims_.vocab_size, k);  // before anything is queued or the state moves
  const size_t n = size_t(B) * k;
  ensure_top_buffers(n);
  // Pinned: [tokens B | parents B] up, [tokens n | log-probabilities n] down.
  const size_t io_bytes = (2 * size_t(B) + 2 * n) * sizeof(int32_t);
  if (w.io.size() < io_bytes) {
    if (graphs_) graphs_->clear();  // they copy from and to the buffer being replaced
    w.io = HostBuffer(ctx_.device(), io_bytes);
  }
  int32_t* up = w.io.data<int32_t>();
  int32_t* down_tokens = up + 2 * B;
  float* down_logp = reinterpret_cast<float*>(down_tokens + n);
  std::copy(tokens, tokens + B, up);
  if (parent) std::copy(parent, parent + B, up + B);
  auto ops = [&] {
    ctx_.upload(w.itokens.data(), up, (parent ? 2 : 1) * size_t(B) * sizeof(int32_t));
    if (parent) gather_state(s);
    step_ops(s);
    beam_topk(ctx_.exec(), s.logits, s.lse, B, dims_.vocab_size, k, first_allowed, banned, w.itop_tokens.data(),
              w.itop_logp.data());
    ctx_.download_async(down_tokens, w.itop_tokens.data(), n * sizeof(int32_t));
    ctx_.download_async(down_logp, w.itop_logp.data(), n * sizeof(float));
  };
  if (graphs_)
    graphs_->run(inference_key(kSearchStepGraph, s, {k, first_allowed, banned, parent != nullptr}), ops);
  else
    ops();
  ctx_.synchronize();
  top_tokens.assign(down_tokens, down_tokens + n);
  top_logp.assign(down_logp, down_logp + n);
}

}  // namespace caption
