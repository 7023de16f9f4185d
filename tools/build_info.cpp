#include "tools/build_info.h"

#include <cblas.h>

#include "kernels/parallel.h"
#include "kernels/vec_math.h"
#include "model/model_config.h"
#include "runtime/device.h"

#if CAPTION_HAS_CUDA
#include <cuda_runtime.h>
#include <cudnn.h>
#endif
#if CAPTION_HAS_OPENCV
#include <opencv2/core/version.hpp>
#endif

namespace caption::cli {

namespace {

std::string cpu_line() {
  const int lanes = cpu::vec::kLanes;
  std::string s = "CPU: vector math " + std::to_string(lanes) + " lanes (" +
                  (lanes == 16 ? "AVX-512" : lanes == 8 ? "AVX2" : "SSE2/NEON, portable") + ")";
#if defined(OPENBLAS_VERSION)
  s += std::string(", ") + openblas_get_config();
#endif
  s += ", " + std::to_string(cpu::num_threads()) + " threads (GEMMs split between them, OpenBLAS single-threaded)";
  return s;
}

std::string cuda_line() {
#if CAPTION_HAS_CUDA
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  const size_t dnn = cudnnGetVersion();  // major * 10000 + minor * 100 + patch since cuDNN 9
  return "CUDA: runtime " + std::to_string(runtime / 1000) + "." + std::to_string(runtime % 1000 / 10) +
         ", cuDNN " + std::to_string(dnn / 10000) + "." + std::to_string(dnn / 100 % 100) + "." +
         std::to_string(dnn % 100) + "; device: " + cuda_description();
#else
  return "CUDA: not built (-DCAPTION_CUDA=OFF or no nvcc at configure time)";
#endif
}

}  // namespace

std::string build_info() {
  std::string s = "caption (model format " + ModelConfig().format + ")\n" + cpu_line() + "\n" + cuda_line() + "\n";
#if CAPTION_HAS_OPENCV
  s += "images: OpenCV " CV_VERSION "\n";
#else
  s += "images: not built (no OpenCV at configure time: image input is refused)\n";
#endif
  s += CAPTION_HAS_HDF5 ? "Keras import: HDF5\n" : "Keras import: not built (no HDF5 at configure time)\n";
  return s;
}

}  // namespace caption::cli
