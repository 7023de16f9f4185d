#include "kernels/lt_matmul.h"

#include <map>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "runtime/cuda_check.h"
#include "runtime/memory_pool.h"

namespace caption::cuda {

namespace {

constexpr uint64_t kMaxWorkspace = 32u << 20;

// The compute types to plan with, in order of preference. Plain FP32 asks for the pedantic mode
// first, the cuBLAS handle's setting (cuBLASLt does not read the handle's), then the default
// one, which is FP32 too (TF32 takes FAST_TF32): no documentation we found says that cuBLASLt
// has bias epilogues for pedantic FP32 on every card. CudaPlainFp32IsNotTf32 checks the result.
std::vector<cublasComputeType_t> compute_types(const LtMatmulSpec& s) {
  if (s.dtype == DType::BF16) return {CUBLAS_COMPUTE_32F};
  if (s.tf32) return {CUBLAS_COMPUTE_32F_FAST_TF32};
  return {CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_COMPUTE_32F};
}

// One call's operation descriptor. The bias pointer is one of its attributes, so each call makes
// its own: a plan shared by threads is never written.
struct OpDesc {
  cublasLtMatmulDesc_t op = nullptr;
  OpDesc(const LtMatmulSpec& s, cublasComputeType_t compute, const void* bias) {
    CUBLAS_CHECK_THROW(cublasLtMatmulDescCreate(&op, compute, CUDA_R_32F));
    try {
      const cublasOperation_t ta = s.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = CUBLAS_OP_N;
      const cublasLtEpilogue_t epi = s.relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
      CUBLAS_CHECK_THROW(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
      CUBLAS_CHECK_THROW(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
      CUBLAS_CHECK_THROW(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
      CUBLAS_CHECK_THROW(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    } catch (...) {
      cublasLtMatmulDescDestroy(op);
      throw;
    }
  }
  ~OpDesc() { cublasLtMatmulDescDestroy(op); }
  OpDesc(const OpDesc&) = delete;
  OpDesc& operator=(const OpDesc&) = delete;
};

struct Preference {
  cublasLtMatmulPreference_t pref = nullptr;
  explicit Preference(const LtMatmulSpec& s) {
    CUBLAS_CHECK_THROW(cublasLtMatmulPreferenceCreate(&pref));
    try {
      const uint64_t max_ws = kMaxWorkspace;
      CUBLAS_CHECK_THROW(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                              &max_ws, sizeof(max_ws)));
      const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> alignments[] = {
          {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, s.align_a},
          {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, s.align_b},
          {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, s.accumulate ? s.align_c : s.align_d},
          {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, s.align_d}};
      for (const auto& [attr, bytes] : alignments)
        CUBLAS_CHECK_THROW(cublasLtMatmulPreferenceSetAttribute(pref, attr, &bytes, sizeof(bytes)));
    } catch (...) {
      cublasLtMatmulPreferenceDestroy(pref);
      throw;
    }
  }
  ~Preference() { cublasLtMatmulPreferenceDestroy(pref); }
  Preference(const Preference&) = delete;
  Preference& operator=(const Preference&) = delete;
};

// A cuBLAS handle may be used wherever a cuBLASLt handle is expected.
cublasLtHandle_t lt_handle(BlasHandle blas) { return reinterpret_cast<cublasLtHandle_t>(blas); }

}  // namespace

std::unique_ptr<LtMatmul> LtMatmul::plan(BlasHandle blas, const LtMatmulSpec& spec) {
  std::unique_ptr<LtMatmul> p(new LtMatmul);
  p->spec_ = spec;
  const cudaDataType_t type = spec.dtype == DType::BF16 ? CUDA_R_16BF : CUDA_R_32F;
  if (spec.trans_a) CUBLAS_CHECK_THROW(cublasLtMatrixLayoutCreate(&p->a_, type, spec.k, spec.m, spec.k));
  else CUBLAS_CHECK_THROW(cublasLtMatrixLayoutCreate(&p->a_, type, spec.m, spec.k, spec.m));
  CUBLAS_CHECK_THROW(cublasLtMatrixLayoutCreate(&p->b_, type, spec.k, spec.n, spec.k));
  CUBLAS_CHECK_THROW(cublasLtMatrixLayoutCreate(&p->d_, type, spec.m, spec.n, spec.m));

  // The heuristic never reads through the bias pointer; it takes the pointer's alignment from its
  // value. A stand-in with exactly the promised alignment keeps the choice valid for every call.
  const Preference pref(spec);
  for (const cublasComputeType_t compute : compute_types(spec)) {
    const OpDesc op(spec, compute, reinterpret_cast<const void*>(uintptr_t(spec.align_bias)));
    int found = 0;
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt_handle(blas), op.op, p->a_, p->b_, p->d_, p->d_,
                                                             pref.pref, 1, &p->heuristic_, &found);
    if (st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_INVALID_VALUE ||
        (st == CUBLAS_STATUS_SUCCESS && found == 0))
      continue;
    CUBLAS_CHECK_THROW(st);
    p->compute_ = compute;
    return p;
  }
  return nullptr;
}

const LtMatmul* LtMatmul::cached(BlasHandle blas, const LtMatmulSpec& s) {
  int device = 0;
  CUDA_CHECK_THROW(cudaGetDevice(&device));
  const auto key = std::make_tuple(device, s.m, s.n, s.k, s.trans_a, s.dtype, s.tf32, s.relu, s.accumulate, s.align_a,
                                   s.align_b, s.align_c, s.align_d, s.align_bias);
  static std::mutex mutex;
  static std::map<decltype(key), std::unique_ptr<LtMatmul>> plans;  // null: no algorithm
  std::lock_guard<std::mutex> lock(mutex);
  auto it = plans.find(key);
  if (it == plans.end()) it = plans.emplace(key, plan(blas, s)).first;
  return it->second.get();
}

LtMatmul::~LtMatmul() {
  if (d_) cublasLtMatrixLayoutDestroy(d_);
  if (b_) cublasLtMatrixLayoutDestroy(b_);
  if (a_) cublasLtMatrixLayoutDestroy(a_);
}

cublasStatus_t LtMatmul::launch(const Exec& ex, const void* A, const void* B, const void* C, const void* bias,
                                void* D) const {
  const OpDesc op(spec_, compute_, bias);
  PoolBuffer<char> workspace(*ex.pool, heuristic_.workspaceSize, ex.stream);
  const float alpha = 1.f, beta = spec_.accumulate ? 1.f : 0.f;
  return cublasLtMatmul(lt_handle(ex.blas), op.op, &alpha, A, a_, B, b_, &beta, spec_.accumulate ? C : D, d_, D, d_,
                        &heuristic_.algo, workspace.data(), heuristic_.workspaceSize, ex.stream);
}

void LtMatmul::run(const Exec& ex, const void* A, const void* B, const void* C, const void* bias, void* D) const {
  CUBLAS_CHECK_THROW(launch(ex, A, B, C, bias, D));
}

}  // namespace caption::cuda
