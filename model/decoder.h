#pragma once
// The merge decoder, identical to the PyTorch module of the model contract:
//   a = relu(img_fc(dropout(feat)));  h = lstm(dropout(embed(tokens)))
//   logits = out(relu(fc(h + a[:, None, :])))
// All parameters live in one device allocation carved into tensors in state-dict order
// (llm.c style), and so do their gradients and Adam's moments: one fused optimizer launch
// updates everything. Activations come from a workspace sized once for the largest batch.
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/context.h"
#include "runtime/graph_cache.h"
#include "runtime/tensor.h"

namespace caption {

struct DecoderDims {
  int feature_dim;  // D
  int embed_dim;    // E (50)
  int hidden_dim;   // H (256): LSTM, img_fc and fc width
  int vocab_size;   // V
};

struct ParamSpec {
  std::string name;  // PyTorch state-dict name
  std::vector<int64_t> shape;
  size_t offset;  // in floats, into the flat parameter buffer
  size_t numel;
};
std::vector<ParamSpec> decoder_param_specs(const DecoderDims& d);
// PyTorch's default initialisation for these layers (Linear/LSTM uniform(+-1/sqrt(fan)),
// Embedding N(0,1) with a zero padding row), drawn from `seed`.
std::vector<float> decoder_init(const DecoderDims& d, uint64_t seed);

// One training or scoring batch on the host: B captions of T+1 tokens (padded with 0);
// inputs are tokens[:, :T], targets tokens[:, 1:].
struct TokenBatch {
  int B = 0;
  int T = 0;
  std::vector<float> features;  // [B, D]
  std::vector<int32_t> tokens;  // [B, T+1]
};

struct LossSum {
  double sum = 0;     // summed token cross-entropy
  int64_t count = 0;  // non-padding target positions
};

class Decoder {
 public:
  Decoder(Context& ctx, const DecoderDims& dims);
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  const DecoderDims& dims() const { return dims_; }
  const std::vector<ParamSpec>& specs() const { return specs_; }
  size_t num_params() const { return num_params_; }
  float* params() const { return params_.data(); }
  float* grads() const { return grads_.data(); }

  // Host <-> device parameter transfer by state-dict name; load checks every name and shape
  // and names `source` (the file) in its errors.
  void load(const std::map<std::string, Tensor>& tensors, const std::string& source);
  std::map<std::string, Tensor> state_dict() const;
  // The flat parameter buffer as one host vector (init, checkpoints, tests).
  void set_flat(const std::vector<float>& host, float* dst);
  std::vector<float> get_flat(const float* src) const;

  // Forward and backward with dropout p (mask from seed and `step`); leaves the gradients
  // of the mean loss over non-padding targets in grads(). Returns the summed loss.
  LossSum train_step(const TokenBatch& batch, float dropout, uint64_t seed, uint64_t step);
  // Forward only, no dropout.
  LossSum evaluate(const TokenBatch& batch);
  // Logits [B*T, V] of the last train_step/evaluate forward are not kept (the backward
  // works in place); `forward_logits` runs a forward and downloads them (tests, tools).
  std::vector<float> forward_logits(const TokenBatch& batch);
  // Frees the training and inference buffers (they come back on the next call that needs them).
  void release_workspace();
  // On CUDA, runs each training step's forward and backward, and each decode step, as one CUDA
  // graph launch (runtime/graph_cache.h), captured once per shape. Decode steps are
  // bit-identical to plain launches; a training step's output rows are padded up to a multiple
  // of B so that batches of one caption length share a graph, which can change the GEMMs'
  // summation order. No effect on the CPU.
  void use_graphs(bool on);
  const GraphCache* graphs() const { return graphs_.get(); }  // null unless in use
  // Pads each training batch's output rows up to a multiple of its B with rows that add nothing,
  // as use_graphs turns on (so that batches of one caption length share a graph); callable on
  // any backend (tests).
  void pad_output_rows(bool on) { pad_rows_ = on; }

  // Inference primitives (device pointers from inference_state()).
  struct StepState {
    int B = 0;
    float* a = nullptr;       // [B,H] image vectors
    float* h = nullptr;       // [B,H]
    float* c = nullptr;       // [B,H]
    float* logits = nullptr;  // [B,V] after step()
    float* lse = nullptr;     // [B]: log-probabilities are logits - lse
  };
  // Prepares B rows from features [B,D] (host), with zero LSTM state.
  StepState begin_inference(const float* features, int B);
  // Feeds tokens [B] (host) and computes the next-token logits and their logsumexp.
  void step(StepState& s, const int32_t* tokens);
  // Downloads log-probabilities [B,V] of the last step.
  void logprobs(const StepState& s, std::vector<float>& out);
  // The k best tokens of each row of the last step and their log-probabilities, [B,k] each,
  // best first (ties: lower id); only tokens >= first_allowed and != banned (-1: none). Picked
  // on the device, so only [B,k] crosses the bus (kernels/beam_topk.h; k <= 64).
  void top_tokens(const StepState& s, int k, int32_t first_allowed, int32_t banned, std::vector<int32_t>& tokens,
                  std::vector<float>& logp);
  // Reorders the B rows of the state: row i takes old row parent[i] (beam search).
  void reorder(StepState& s, const int32_t* parent);
  // One step of a search, as generate() runs it: reorder by `parent` (null: rows stay), step
  // with `tokens`, then top_tokens. The same results as those calls, with one wait for the
  // device instead of four: the inputs go up and the picks come down through pinned memory,
  // and with use_graphs the whole step is one graph launch.
  void search_step(StepState& s, const int32_t* parent, const int32_t* tokens, int k, int32_t first_allowed,
                   int32_t banned, std::vector<int32_t>& top_tokens, std::vector<float>& top_logp);

 private:
  struct Workspace;
  void ensure_workspace(int B, int T);
  struct BatchRows {
    int real;    // output rows with a target
    int padded;  // after the padding rows (position 0, target <pad>) that round it up
  };
  // Uploads features, inputs and the output rows: only the positions with a real target
  // when `compact` (padding positions cost no output-layer work), else all B*T; then
  // padding rows up to a multiple of row_multiple.
  BatchRows upload_batch(const TokenBatch& batch, bool compact, int row_multiple = 1);
  // Forward to the loss per output row; dropout offsets and the loss scale are read from the
  // workspace (train_step writes them).
  void forward(int B, int T, int rows, float dropout, uint64_t seed);
  LossSum sum_loss(BatchRows rows);  // downloads the per-row losses
  void backward(int B, int T, int rows, float dropout, uint64_t seed);
  // Inference pieces: the step's ops (tokens from the workspace), the state's row gather
  // (parents from the workspace), the top-k buffers, and the graph key of an inference sequence.
  void step_ops(const StepState& s);
  void gather_state(const StepState& s);
  void ensure_top_buffers(size_t n);
  static GraphCache::Key inference_key(int64_t kind, const StepState& s, std::initializer_list<int64_t> more);
  // Parameter k (a ParamSpec index) and its gradient, inside the flat buffers.
  const float* at(int k) const { return params_.data() + specs_[k].offset; }
  float* grad(int k) const { return grads_.data() + specs_[k].offset; }

  Context& ctx_;
  DecoderDims dims_;
  std::vector<ParamSpec> specs_;
  size_t num_params_ = 0;
  PoolBuffer<float> params_;
  PoolBuffer<float> grads_;
  std::unique_ptr<Workspace> ws_;
  std::unique_ptr<GraphCache> graphs_;  // null: plain launches
  bool pad_rows_ = false;
};

}  // namespace caption
