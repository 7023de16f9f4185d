#pragma once
// Memory order of the encoder's activations on CUDA. NHWC is the engine's layout and the only
// one of the CPU reference (its im2col + GEMM wants channels innermost); NCHW is offered on CUDA
// because cuDNN's FP32 (no tensor core) kernels are tuned for it: on an H200 PyTorch's NCHW 1x1
// convolutions ran 2-4x faster than the engine's NHWC ones (README, Performance).
namespace caption {

enum class Layout { NHWC, NCHW };

inline const char* layout_name(Layout l) { return l == Layout::NHWC ? "nhwc" : "nchw"; }

}  // namespace caption
