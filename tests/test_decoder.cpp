// The whole decoder against PyTorch (golden file from tests/golden/make_decoder_golden.py),
// and the CUDA decoder against the CPU one.
#include "model/decoder.h"

#include <fstream>
#include <tuple>
#include <nlohmann/json.hpp>

#include "kernels/adam.h"
#include "model/captioner.h"
#include "tests/test_util.h"

namespace caption {
namespace {

using test::all_close;

struct Golden {
  nlohmann::json j;
  DecoderDims dims;
  TokenBatch batch;
  std::map<std::string, Tensor> state(const char* key) const {
    std::map<std::string, Tensor> out;
    for (auto& [name, values] : j[key].items()) {
      Tensor t;
      t.shape = j["shapes"][name].get<std::vector<int64_t>>();
      t.data = values.get<std::vector<float>>();
      out[name] = t;
    }
    return out;
  }
};

Golden load_golden() {
  std::ifstream in(std::string(CAPTION_TEST_DATA) + "/golden/decoder_small.json");
  Golden g;
  g.j = nlohmann::json::parse(in);
  auto d = g.j["dims"];
  g.dims = {d["feature_dim"], d["embed_dim"], d["hidden_dim"], d["vocab_size"]};
  g.batch.B = g.j["B"];
  g.batch.T = g.j["T"];
  g.batch.features = g.j["features"].get<std::vector<float>>();
  g.batch.tokens = g.j["tokens"].get<std::vector<int32_t>>();
  return g;
}

// Relative tolerance against the tensor's scale: float32 vs PyTorch float32.
::testing::AssertionResult close_rel(const std::vector<float>& got, const std::vector<float>& want, float rel) {
  float scale = 0;
  for (float w : want) scale = std::max(scale, std::fabs(w));
  return all_close(got, want, rel, rel * scale);
}

void check_golden(Device device) {
  Golden g = load_golden();
  Context ctx(device);
  Decoder dec(ctx, g.dims);
  dec.load(g.state("params"), "golden");
  EXPECT_TRUE(close_rel(dec.forward_logits(g.batch), g.j["logits"].get<std::vector<float>>(), 1e-5f));

  LossSum s = dec.train_step(g.batch, 0.f, 1, 0);
  EXPECT_NEAR(s.sum / s.count, g.j["loss"].get<double>(), 1e-5 * g.j["loss"].get<double>());
  auto grads = dec.get_flat(dec.grads());
  for (const auto& spec : dec.specs()) {
    std::vector<float> got(grads.begin() + spec.offset, grads.begin() + spec.offset + spec.numel);
    EXPECT_TRUE(close_rel(got, g.j["grads"][spec.name].get<std::vector<float>>(), 1e-5f)) << spec.name;
  }

  PoolBuffer<float> m(ctx.pool(), dec.num_params(), ctx.exec().stream), v(ctx.pool(), dec.num_params(), ctx.exec().stream);
  ctx.zero(m.data(), dec.num_params() * 4);
  ctx.zero(v.data(), dec.num_params() * 4);
  for (long step = 1; step <= 3; ++step) {
    if (step > 1) dec.train_step(g.batch, 0.f, 1, step);
    adam_step(ctx.exec(), dec.params(), dec.grads(), m.data(), v.data(), dec.num_params(), AdamConfig{}, step);
  }
  auto after = dec.state_dict();
  for (auto& [name, t] : g.state("params_after_3_adam_steps"))
    EXPECT_TRUE(close_rel(after.at(name).data, t.data, 1e-5f)) << name;
}

TEST(Decoder, CpuMatchesPyTorchGolden) { check_golden(Device::CPU); }

TEST(Decoder, CudaMatchesPyTorchGolden) {
  REQUIRE_CUDA();
  check_golden(Device::CUDA);
}

TEST(Decoder, StepByStepInferenceMatchesTeacherForcing) {
  Golden g = load_golden();
  Context ctx(Device::CPU);
  Decoder dec(ctx, g.dims);
  dec.load(g.state("params"), "golden");
  auto logits = dec.forward_logits(g.batch);
  const int B = g.batch.B, T = g.batch.T, V = g.dims.vocab_size;
  auto state = dec.begin_inference(g.batch.features.data(), B);
  std::vector<float> lp;
  for (int t = 0; t < T; ++t) {
    std::vector<int32_t> tok(B);
    for (int b = 0; b < B; ++b) tok[b] = g.batch.tokens[b * (T + 1) + t];
    dec.step(state, tok.data());
    dec.logprobs(state, lp);
    for (int b = 0; b < B; ++b) {
      // log-softmax of the teacher-forced logits at (b, t)
      const float* row = logits.data() + (size_t(b) * T + t) * V;
      double mx = *std::max_element(row, row + V), sum = 0;
      for (int k = 0; k < V; ++k) sum += std::exp(row[k] - mx);
      for (int k = 0; k < V; ++k) EXPECT_NEAR(lp[b * V + k], row[k] - mx - std::log(sum), 1e-5) << b << "," << t;
    }
  }
}

TEST(Decoder, GreedyIsBeamOneAndPicksArgmax) {
  Golden g = load_golden();
  Context ctx(Device::CPU);
  Decoder dec(ctx, g.dims);
  dec.load(g.state("params"), "golden");
  DecodeOptions opt;
  opt.max_len = 6;
  auto ids = generate(dec, g.batch.features.data(), g.batch.B, opt);
  ASSERT_EQ(ids.size(), size_t(g.batch.B));
  // Re-derive image 0's caption by hand: argmax over tokens >= <end>, stop at <end>.
  auto state = dec.begin_inference(g.batch.features.data(), 1);
  std::vector<int32_t> want;
  int32_t tok = Vocabulary::kStart;
  std::vector<float> lp;
  for (int t = 0; t < opt.max_len - 1; ++t) {
    dec.step(state, &tok);
    dec.logprobs(state, lp);
    tok = int32_t(std::max_element(lp.begin() + Vocabulary::kEnd, lp.end()) - lp.begin());
    if (tok == Vocabulary::kEnd) break;
    want.push_back(tok);
  }
  EXPECT_EQ(ids[0], want);
  EXPECT_LE(ids[0].size(), size_t(opt.max_len - 1));
  for (auto& caption : ids)
    for (int32_t id : caption) EXPECT_GT(id, Vocabulary::kEnd);  // never <pad>, <start>, <end>
}

TEST(Decoder, WiderBeamNeverScoresWorse) {
  Golden g = load_golden();
  Context ctx(Device::CPU);
  Decoder dec(ctx, g.dims);
  dec.load(g.state("params"), "golden");
  auto score = [&](const std::vector<int32_t>& words, int b) {  // sum log p of words + <end>
    auto state = dec.begin_inference(g.batch.features.data() + b * g.dims.feature_dim, 1);
    std::vector<float> lp;
    int32_t tok = Vocabulary::kStart;
    double s = 0;
    for (size_t t = 0; t <= words.size(); ++t) {
      dec.step(state, &tok);
      dec.logprobs(state, lp);
      tok = t < words.size() ? words[t] : Vocabulary::kEnd;
      s += lp[tok];
    }
    return s;
  };
  DecodeOptions greedy, beam;
  greedy.max_len = beam.max_len = 8;
  beam.beam = 4;
  auto a = generate(dec, g.batch.features.data(), g.batch.B, greedy);
  auto b = generate(dec, g.batch.features.data(), g.batch.B, beam);
  for (int i = 0; i < g.batch.B; ++i) {
    if (a[i].size() == size_t(greedy.max_len - 1)) continue;  // unfinished greedy caption
    EXPECT_GE(score(b[i], i), score(a[i], i) - 1e-6) << "image " << i;
  }
}

TEST(Decoder, CpuTrainingIsBitReproducible) {
  Golden g = load_golden();
  auto run = [&] {
    Context ctx(Device::CPU);
    Decoder dec(ctx, g.dims);
    dec.set_flat(decoder_init(g.dims, 3), dec.params());
    dec.train_step(g.batch, 0.3f, 42, 5);
    return dec.get_flat(dec.grads());
  };
  EXPECT_EQ(run(), run());
}

// Padding rows (position 0, target <pad>; what use_graphs adds on CUDA) add nothing: the same
// loss and gradients as without them.
TEST(Decoder, PaddedOutputRowsAddNothing) {
  const DecoderDims dims{64, 50, 256, 1001};
  TokenBatch b;
  b.B = 16, b.T = 9;
  b.features = test::random_vector(size_t(b.B) * dims.feature_dim, 8);
  b.tokens.assign(size_t(b.B) * (b.T + 1), 0);
  for (int i = 0; i < b.B; ++i)
    for (int t = 0; t <= b.T - i % 6; ++t) b.tokens[i * (b.T + 1) + t] = t == 0 ? 1 : 4 + (i * 7 + t * 3) % 990;
  auto run = [&](bool pad) {
    Context ctx(Device::CPU);
    Decoder dec(ctx, dims);
    dec.set_flat(decoder_init(dims, 9), dec.params());
    dec.pad_output_rows(pad);
    const LossSum s = dec.train_step(b, 0.3f, 5, 2);
    auto out = dec.get_flat(dec.grads());
    out.push_back(float(s.sum));
    out.push_back(float(s.count));
    return out;
  };
  EXPECT_TRUE(all_close(run(true), run(false), 1e-6f, 1e-9f));
}

TEST(Decoder, CudaTrainingStepMatchesCpuWithDropout) {
  REQUIRE_CUDA();
  Golden g = load_golden();
  auto run = [&](Device d) {
    Context ctx(d);
    Decoder dec(ctx, g.dims);
    dec.set_flat(decoder_init(g.dims, 3), dec.params());
    LossSum s = dec.train_step(g.batch, 0.3f, 42, 5);
    auto grads = dec.get_flat(dec.grads());
    grads.push_back(float(s.sum));
    return grads;
  };
  EXPECT_TRUE(all_close(run(Device::CUDA), run(Device::CPU), 1e-4f, 1e-5f));
}

void check_no_cuda_malloc_after_warmup(bool graphs) {
  Context ctx(Device::CUDA);
  DecoderDims dims{64, 50, 256, 1001};
  Decoder dec(ctx, dims);
  dec.use_graphs(graphs);
  dec.set_flat(decoder_init(dims, 1), dec.params());
  PoolBuffer<float> m(ctx.pool(), dec.num_params(), ctx.exec().stream), v(ctx.pool(), dec.num_params(), ctx.exec().stream);
  ctx.zero(m.data(), dec.num_params() * 4);
  ctx.zero(v.data(), dec.num_params() * 4);
  auto batch = [&](int B, int T) {
    TokenBatch b;
    b.B = B, b.T = T;
    b.features = test::random_vector(size_t(B) * dims.feature_dim, B + T);
    b.tokens.assign(size_t(B) * (T + 1), 0);
    for (int i = 0; i < B; ++i)
      for (int t = 0; t <= T - i % 3; ++t) b.tokens[i * (T + 1) + t] = t == 0 ? 1 : 4 + (i * 7 + t) % 990;
    return b;
  };
  long step = 0;
  auto train = [&](int B, int T) {
    dec.train_step(batch(B, T), 0.3f, 1, step);
    adam_step(ctx.exec(), dec.params(), dec.grads(), m.data(), v.data(), dec.num_params(), AdamConfig{}, ++step);
  };
  train(64, 39);  // warm-up at the largest shape
  size_t mallocs = ctx.pool().stats().backing_allocs;
  for (auto [B, T] : {std::pair{64, 39}, {64, 12}, {17, 30}, {1, 5}}) train(B, T);
  ctx.synchronize();
  EXPECT_EQ(ctx.pool().stats().backing_allocs, mallocs);
}

TEST(Decoder, CudaTrainingStepMakesNoCudaMallocAfterWarmup) {
  REQUIRE_CUDA();
  check_no_cuda_malloc_after_warmup(false);
}

TEST(Decoder, CudaGraphTrainingStepMakesNoCudaMallocAfterWarmup) {
  REQUIRE_CUDA();
  check_no_cuda_malloc_after_warmup(true);
}

// --cuda-graphs. Decode steps replay bit for bit, across a reorder and a larger batch (which
// replaces the buffers, so the graphs are captured afresh).
TEST(Decoder, CudaGraphDecodeStepsMatchPlainLaunches) {
  REQUIRE_CUDA();
  const DecoderDims dims{64, 50, 256, 1001};
  auto run = [&](bool graphs, size_t* captures) {
    Context ctx(Device::CUDA);
    Decoder dec(ctx, dims);
    dec.set_flat(decoder_init(dims, 2), dec.params());
    dec.use_graphs(graphs);
    std::vector<float> out, logp;
    for (int B : {5, 9}) {
      const auto features = test::random_vector(size_t(B) * dims.feature_dim, B);
      auto state = dec.begin_inference(features.data(), B);
      for (int t = 0; t < 6; ++t) {
        std::vector<int32_t> tokens(B), parent(B);
        for (int b = 0; b < B; ++b) tokens[b] = 1 + (b * 31 + t * 17) % 1000, parent[b] = B - 1 - b;
        dec.step(state, tokens.data());
        dec.logprobs(state, logp);
        out.insert(out.end(), logp.begin(), logp.end());
        if (t == 3) dec.reorder(state, parent.data());
      }
    }
    if (captures) *captures = dec.graphs()->captures();
    return out;
  };
  size_t captures = 0;
  const auto plain = run(false, nullptr);
  EXPECT_EQ(run(true, &captures), plain);
  EXPECT_EQ(captures, 2u);
}

// search_step (generate()'s step: reorder, step, top_tokens with one wait) gives what its parts
// give, on the CPU, and on CUDA also as graphs (one without parents for the first step, one with,
// one more once a larger k has replaced the buffers); a k out of range is refused up front.
void check_search_step_matches_its_parts(Device device, bool graphs) {
  const DecoderDims dims{64, 50, 256, 1001};
  Context ctx(device);
  Decoder parts(ctx, dims), whole(ctx, dims);
  for (Decoder* d : {&parts, &whole}) d->set_flat(decoder_init(dims, 6), d->params());
  whole.use_graphs(graphs);
  const int B = 6;
  const auto features = test::random_vector(size_t(B) * dims.feature_dim, 7);
  auto sp = parts.begin_inference(features.data(), B), sw = whole.begin_inference(features.data(), B);
  std::vector<int32_t> want_tokens, got_tokens;
  std::vector<float> want_logp, got_logp;
  for (int t = 0; t < 5; ++t) {
    const int k = t < 3 ? 4 : 8;  // a larger k replaces the pick's buffers (and drops the graphs)
    std::vector<int32_t> tokens(B), parent(B);
    for (int b = 0; b < B; ++b) tokens[b] = 1 + (b * 13 + t * 7) % 1000, parent[b] = (b * 5 + t) % B;
    if (t > 0) parts.reorder(sp, parent.data());
    parts.step(sp, tokens.data());
    parts.top_tokens(sp, k, 3, 5, want_tokens, want_logp);
    whole.search_step(sw, t > 0 ? parent.data() : nullptr, tokens.data(), k, 3, 5, got_tokens, got_logp);
    EXPECT_EQ(got_tokens, want_tokens) << "step " << t;
    EXPECT_EQ(got_logp, want_logp) << "step " << t;
  }
  if (graphs) EXPECT_EQ(whole.graphs()->captures(), 3u);  // no parents; parents at k 4; at k 8
  EXPECT_THROW(whole.search_step(sw, nullptr, std::vector<int32_t>(B, 1).data(), 0, 3, 5, got_tokens, got_logp),
               std::invalid_argument);
}

TEST(Decoder, SearchStepMatchesItsParts) { check_search_step_matches_its_parts(Device::CPU, false); }

TEST(Decoder, CudaSearchStepMatchesItsParts) {
  REQUIRE_CUDA();
  check_search_step_matches_its_parts(Device::CUDA, false);
  check_search_step_matches_its_parts(Device::CUDA, true);
}

// A training step's graph takes each step's dropout offsets and loss scale from memory. With
// every caption full length there are no padding rows and the steps match plain launches bit
// for bit; with ragged captions the output rows are padded up to a multiple of B, which can
// change the order of the weight gradients' sums.
TEST(Decoder, CudaGraphTrainingStepsMatchPlainLaunches) {
  REQUIRE_CUDA();
  const DecoderDims dims{64, 50, 256, 1001};
  const int B = 16, T = 9;
  auto batch = [&](bool ragged, int step) {
    TokenBatch b;
    b.B = B, b.T = T;
    b.features = test::random_vector(size_t(B) * dims.feature_dim, 100 + step);
    b.tokens.assign(size_t(B) * (T + 1), 0);
    for (int i = 0; i < B; ++i) {
      const int len = ragged ? T - (i * 5 + step) % 6 : T;
      for (int t = 0; t <= len; ++t) b.tokens[i * (T + 1) + t] = t == 0 ? 1 : 4 + (i * 7 + t * 3 + step) % 990;
    }
    return b;
  };
  auto run = [&](bool graphs, bool ragged, size_t* captures) {
    Context ctx(Device::CUDA);
    Decoder dec(ctx, dims);
    dec.set_flat(decoder_init(dims, 4), dec.params());
    dec.use_graphs(graphs);
    std::vector<float> out;
    for (int step = 0; step < 4; ++step) {
      const LossSum s = dec.train_step(batch(ragged, step), 0.3f, 5, uint64_t(step));
      const auto grads = dec.get_flat(dec.grads());
      out.insert(out.end(), grads.begin(), grads.end());
      out.push_back(float(s.sum));
      out.push_back(float(s.count));
    }
    if (captures) *captures = dec.graphs()->captures();
    return out;
  };
  size_t captures = 0;
  EXPECT_EQ(run(true, false, &captures), run(false, false, nullptr));
  EXPECT_EQ(captures, 1u);
  EXPECT_TRUE(all_close(run(true, true, &captures), run(false, true, nullptr), 1e-5f, 1e-7f));
  EXPECT_EQ(captures, 1u);  // 102-108 real rows, all padded to 112: one graph, four loss scales
}

}  // namespace
}  // namespace caption

namespace caption {
namespace {

TEST(Decoder, NoUnkNeverEmitsUnk) {
  Golden g = load_golden();
  Context ctx(Device::CPU);
  Decoder dec(ctx, g.dims);
  auto state = g.state("params");
  auto& out_bias = state.at("out.bias").data;
  out_bias[Vocabulary::kUnk] += 50.f;  // <unk> dominates every step
  dec.load(state, "golden");
  for (int beam : {1, 3}) {
    DecodeOptions opt;
    opt.max_len = 6;
    opt.beam = beam;
    auto with = generate(dec, g.batch.features.data(), g.batch.B, opt);
    EXPECT_EQ(with[0], std::vector<int32_t>(opt.max_len - 1, Vocabulary::kUnk));
    opt.allow_unk = false;
    for (auto& caption : generate(dec, g.batch.features.data(), g.batch.B, opt))
      for (int32_t id : caption) EXPECT_NE(id, Vocabulary::kUnk);
  }
}

}  // namespace
}  // namespace caption

namespace caption {
namespace {

// Beam search the textbook way, for generate() to be checked against: every allowed token of
// every live beam is a candidate, scored from the full downloaded logits and lse. The same
// row layout as generate() (K rows per image, one batch), so the decoder's numbers are the
// same; the same pruning, stopping and tie rules (score, then token, then beam).
std::vector<std::vector<int32_t>> reference_beam_search(Context& ctx, Decoder& dec, const std::vector<float>& feats,
                                                        int n, const DecodeOptions& opt) {
  struct Hyp {
    std::vector<int32_t> words;
    double logp;
  };
  auto norm = [&](const Hyp& h) { return h.logp / std::pow(double(h.words.size() + 1), double(opt.length_penalty)); };
  auto by_norm = [&](const Hyp& a, const Hyp& b) { return norm(a) > norm(b); };
  const int K = opt.beam, D = dec.dims().feature_dim, V = dec.dims().vocab_size, rows = n * K;
  std::vector<float> rep;
  for (int r = 0; r < rows; ++r) rep.insert(rep.end(), feats.begin() + (r / K) * D, feats.begin() + (r / K + 1) * D);
  auto st = dec.begin_inference(rep.data(), rows);
  std::vector<std::vector<Hyp>> live(n, {Hyp{{}, 0.0}}), fin(n);
  std::vector<char> done(n, 0);
  std::vector<int32_t> tok(rows, Vocabulary::kStart), parent(rows);
  std::vector<float> logits(size_t(rows) * V), lse(rows);
  for (int t = 0; t < opt.max_len - 1 && std::count(done.begin(), done.end(), 0) > 0; ++t) {
    dec.step(st, tok.data());
    ctx.download(logits.data(), st.logits, logits.size() * sizeof(float));
    ctx.download(lse.data(), st.lse, lse.size() * sizeof(float));
    for (int r = 0; r < rows; ++r) parent[r] = r;
    for (int img = 0; img < n; ++img) {
      if (done[img]) continue;
      std::vector<std::tuple<double, int32_t, int>> all;  // (-score, token, beam): sorts best first
      for (int k = 0; k < int(live[img].size()); ++k)
        for (int32_t v = Vocabulary::kEnd; v < V; ++v)
          if (opt.allow_unk || v != Vocabulary::kUnk) {
            const int r = img * K + k;
            all.emplace_back(-(live[img][k].logp + (logits[size_t(r) * V + v] - lse[r])), v, k);
          }
      std::sort(all.begin(), all.end());
      std::vector<Hyp> next;
      for (size_t c = 0; c < all.size() && c < size_t(2 * K) && int(next.size()) < K; ++c) {
        auto [neg_score, v, k] = all[c];
        Hyp h{live[img][k].words, -neg_score};
        if (v == Vocabulary::kEnd) {
          fin[img].push_back(h);
          continue;
        }
        h.words.push_back(v);
        parent[img * K + int(next.size())] = img * K + k;
        tok[img * K + int(next.size())] = v;
        next.push_back(h);
      }
      std::stable_sort(fin[img].begin(), fin[img].end(), by_norm);
      if (int(fin[img].size()) > K) fin[img].resize(K);
      live[img] = next;
      if (next.empty() || (int(fin[img].size()) >= K &&
                           norm(*std::min_element(next.begin(), next.end(), by_norm)) <= norm(fin[img].back())))
        done[img] = 1;
    }
    if (K > 1) dec.reorder(st, parent.data());
  }
  std::vector<std::vector<int32_t>> out;
  for (int img = 0; img < n; ++img) {
    auto pool = fin[img];
    if (!done[img]) pool.insert(pool.end(), live[img].begin(), live[img].end());
    std::stable_sort(pool.begin(), pool.end(), by_norm);
    out.push_back(pool.empty() ? std::vector<int32_t>{} : pool[0].words);
  }
  return out;
}

void check_generate_matches_reference(Device device) {
  Context ctx(device);
  int finished = 0, total = 0;
  for (int V : {7, 40, 157}) {
    DecoderDims dims{12, 8, 16, V};
    Decoder dec(ctx, dims);
    // Larger output weights than PyTorch's init make the distributions peaked; a boost of
    // <end> lets captions finish before max_len, one of <unk> makes --no-unk matter.
    auto flat = decoder_init(dims, V);
    auto spec = [&](const char* name) {
      return *std::find_if(dec.specs().begin(), dec.specs().end(), [&](auto& s) { return s.name == name; });
    };
    for (size_t i = 0; i < spec("out.weight").numel; ++i) flat[spec("out.weight").offset + i] *= 12.f;
    flat[spec("out.bias").offset + Vocabulary::kEnd] += 3.f;
    flat[spec("out.bias").offset + Vocabulary::kUnk] += 2.f;
    dec.set_flat(flat, dec.params());
    const int n = 6;
    auto feats = test::random_vector(size_t(n) * dims.feature_dim, V, 0.f, 2.f);
    for (int beam : {1, 3, 5})
      for (bool allow_unk : {true, false}) {
        DecodeOptions opt;
        opt.beam = beam, opt.allow_unk = allow_unk, opt.max_len = 9;
        auto got = generate(dec, feats.data(), n, opt);
        EXPECT_EQ(got, reference_beam_search(ctx, dec, feats, n, opt))
            << "V=" << V << " beam " << beam << " unk " << allow_unk;
        for (auto& c : got) finished += c.size() < size_t(opt.max_len - 1), ++total;
      }
  }
  EXPECT_GT(finished, total / 4);  // the test exercises <end>, not only max_len cut-offs
}

TEST(Decoder, BeamSearchMatchesFullVocabularyReference) { check_generate_matches_reference(Device::CPU); }

TEST(Decoder, CudaBeamSearchMatchesFullVocabularyReference) {
  REQUIRE_CUDA();
  check_generate_matches_reference(Device::CUDA);
}

}  // namespace
}  // namespace caption
