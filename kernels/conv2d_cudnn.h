#pragma once
// The cuDNN descriptors of one convolution with its bias and activation, as the encoder calls it
// (cudnnConvolutionBiasActivationForward, or cudnnConvolutionForward and an epilogue): shared by
// kernels/conv2d.cu and bench/conv_algos.cu, so that the sweep measures exactly the engine's
// calls. CUDA builds only. The math type is left at cuDNN's default: callers set it per algorithm.
#include <cudnn.h>

#include "kernels/conv2d.h"
#include "kernels/layout.h"
#include "runtime/cuda_check.h"

namespace caption::cuda {

struct ConvDescriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnActivationDescriptor_t act = nullptr;

  // x [N,C,H,W] and y [N,K,P,Q] in `layout`, weights in the same order (NHWC is KRSC, NCHW is
  // KCRS), bias [1,K,1,1], all of `type`; products accumulate in FP32 in every precision.
  ConvDescriptors(const ConvShape& s, Layout layout, cudnnDataType_t type, bool relu) {
    try {
      CUDNN_CHECK_THROW(cudnnCreateTensorDescriptor(&x));
      CUDNN_CHECK_THROW(cudnnCreateTensorDescriptor(&y));
      CUDNN_CHECK_THROW(cudnnCreateTensorDescriptor(&bias));
      CUDNN_CHECK_THROW(cudnnCreateFilterDescriptor(&w));
      CUDNN_CHECK_THROW(cudnnCreateConvolutionDescriptor(&conv));
      CUDNN_CHECK_THROW(cudnnCreateActivationDescriptor(&act));
      const cudnnTensorFormat_t format = layout == Layout::NCHW ? CUDNN_TENSOR_NCHW : CUDNN_TENSOR_NHWC;
      CUDNN_CHECK_THROW(cudnnSetTensor4dDescriptor(x, format, type, s.N, s.C, s.H, s.W));
      CUDNN_CHECK_THROW(cudnnSetTensor4dDescriptor(y, format, type, s.N, s.K, s.P(), s.Q()));
      CUDNN_CHECK_THROW(cudnnSetTensor4dDescriptor(bias, CUDNN_TENSOR_NCHW, type, 1, s.K, 1, 1));
      CUDNN_CHECK_THROW(cudnnSetFilter4dDescriptor(w, type, format, s.K, s.C, s.R, s.S));
      CUDNN_CHECK_THROW(cudnnSetConvolution2dDescriptor(conv, s.pad, s.pad, s.stride, s.stride, 1, 1,
                                                        CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
      CUDNN_CHECK_THROW(cudnnSetActivationDescriptor(act, relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY,
                                                     CUDNN_NOT_PROPAGATE_NAN, 0.0));
    } catch (...) {
      destroy();
      throw;
    }
  }
  ~ConvDescriptors() { destroy(); }
  ConvDescriptors(const ConvDescriptors&) = delete;
  ConvDescriptors& operator=(const ConvDescriptors&) = delete;

 private:
  void destroy() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (bias) cudnnDestroyTensorDescriptor(bias);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (act) cudnnDestroyActivationDescriptor(act);
  }
};

}  // namespace caption::cuda
