// PyTorch operators (torch.ops.dsslab_kernels.*) around the kernels of selection_kernels.cuh.
// dsslab/kernels/ops.py checks arguments and chooses the plan; this file checks tensors,
// allocates the working buffers and launches, all on the current CUDA stream.

#define TORCH_ASSERT_ONLY_METHOD_OPERATORS  // per-operator headers compile much faster
#include <ATen/core/Tensor.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <optional>
#include <tuple>

#include "selection_kernels.cuh"

namespace {

using dsslab::kChunk;
using dsslab::kThreads;
using dsslab::kWarps;
using OptionalTensor = std::optional<at::Tensor>;

const float* optional_data(const OptionalTensor& tensor) {
  return tensor.has_value() && tensor->defined() ? tensor->data_ptr<float>() : nullptr;
}

void check_input(const at::Tensor& tensor, const char* name, at::ScalarType dtype) {
  TORCH_CHECK(tensor.is_cuda(), name, " must be a CUDA tensor");
  TORCH_CHECK(tensor.scalar_type() == dtype, name, " must be ", dtype, ", got ",
              tensor.scalar_type());
  TORCH_CHECK(tensor.is_contiguous(), name, " must be contiguous");
}

void check_optional(const OptionalTensor& tensor, const char* name) {
  if (tensor.has_value() && tensor->defined()) check_input(*tensor, name, at::kFloat);
}

int blocks_for(int64_t items, int64_t per_block) {
  const int64_t blocks = (items + per_block - 1) / per_block;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(blocks, 65535)));
}

at::Tensor gains_op(const at::Tensor& residuals, const OptionalTensor& embeddings,
                    const at::Tensor& target_bias, const OptionalTensor& target_weight) {
  check_input(residuals, "residuals", at::kFloat);
  check_input(target_bias, "target_bias", at::kFloat);
  check_optional(embeddings, "embeddings");
  check_optional(target_weight, "target_weight");
  const c10::cuda::CUDAGuard guard(residuals.device());
  const int64_t samples = residuals.size(0), classes = residuals.size(1);
  const int64_t dim = embeddings.has_value() ? embeddings->size(1) : 0;
  auto gains = at::empty({samples}, residuals.options());
  if (samples == 0) return gains;
  dsslab::gains_kernel<<<blocks_for(samples, kWarps), kThreads, 0,
                         c10::cuda::getCurrentCUDAStream()>>>(
      residuals.data_ptr<float>(), optional_data(embeddings), target_bias.data_ptr<float>(),
      optional_data(target_weight), samples, classes, dim, gains.data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return gains;
}

std::tuple<at::Tensor, at::Tensor> segment_sums_op(
    const at::Tensor& residuals, const OptionalTensor& embeddings, const at::Tensor& order,
    const at::Tensor& sorted_groups, const OptionalTensor& weights, int64_t num_groups) {
  check_input(residuals, "residuals", at::kFloat);
  check_input(order, "order", at::kLong);
  check_input(sorted_groups, "sorted_groups", at::kLong);
  check_optional(embeddings, "embeddings");
  check_optional(weights, "weights");
  const c10::cuda::CUDAGuard guard(residuals.device());
  const int64_t samples = residuals.size(0), classes = residuals.size(1);
  const bool linear = embeddings.has_value() && embeddings->defined();
  const int64_t dim = linear ? embeddings->size(1) : 0;
  auto bias_sums = at::zeros({num_groups, classes}, residuals.options());
  auto weight_sums = at::zeros({linear ? num_groups : 0, classes, dim}, residuals.options());
  if (samples == 0) return {bias_sums, weight_sums};
  const int64_t width = classes * (linear ? 1 + dim : 1);
  TORCH_CHECK(width <= int64_t{65535} * kThreads, "classes x (1 + dim) = ", width,
              " exceeds what segment_sums supports");
  TORCH_CHECK(samples <= int64_t{65535} * kChunk, "segment_sums supports at most ",
              int64_t{65535} * kChunk, " samples, got ", samples);
  const dim3 grid(blocks_for(samples, kChunk), blocks_for(width, kThreads));
  dsslab::segment_sums_kernel<<<grid, kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      residuals.data_ptr<float>(), optional_data(embeddings), order.data_ptr<int64_t>(),
      sorted_groups.data_ptr<int64_t>(), optional_data(weights), samples, classes, dim,
      bias_sums.data_ptr<float>(), linear ? weight_sums.data_ptr<float>() : nullptr);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {bias_sums, weight_sums};
}

int device_attribute(cudaDeviceAttr attribute, int device) {
  int value = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&value, attribute, device));
  return value;
}

// How many blocks of the greedy kernel fit on the device at once with this shared memory.
int co_resident_blocks(int device, size_t shared_bytes) {
  C10_CUDA_CHECK(cudaFuncSetAttribute(dsslab::greedy_round_kernel,
                                      cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(shared_bytes)));
  int per_multiprocessor = 0;
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
      &per_multiprocessor, dsslab::greedy_round_kernel, kThreads, shared_bytes));
  TORCH_CHECK(per_multiprocessor > 0, "the greedy kernel cannot run with ", shared_bytes,
              " bytes of shared memory per block");
  return per_multiprocessor * device_attribute(cudaDevAttrMultiProcessorCount, device);
}

// Working buffers of one round, allocated on the residuals' device.
struct RoundBuffers {
  at::Tensor val_logits, val_residuals, pool, position, slots, partials, gradient, best_gains,
      best_indices, picked, picked_gains;
};

RoundBuffers allocate(const dsslab::Problem& p, const at::Tensor& val_logits, int blocks) {
  const auto floats = val_logits.options();
  const auto ints = floats.dtype(at::kInt);
  const int64_t samples = p.samples;
  return {val_logits.clone(),
          at::empty_like(val_logits),
          at::arange(samples, ints),
          at::arange(samples, ints),
          at::empty({2 * samples}, ints),
          at::empty({int64_t{2} * blocks * p.partial_stride}, floats),
          at::empty({int64_t{2} * p.width}, floats),
          at::empty({int64_t{2} * blocks}, floats),
          at::empty({int64_t{2} * blocks}, ints),
          at::empty({p.budget}, floats.dtype(at::kLong)),
          at::empty({p.budget}, floats)};
}

void point_at(dsslab::Problem& p, RoundBuffers& buffers) {
  p.val_logits = buffers.val_logits.data_ptr<float>();
  p.val_residuals = buffers.val_residuals.data_ptr<float>();
  p.pool = buffers.pool.data_ptr<int>();
  p.position = buffers.position.data_ptr<int>();
  p.slots = buffers.slots.data_ptr<int>();
  p.partials = buffers.partials.data_ptr<float>();
  p.gradient = buffers.gradient.data_ptr<float>();
  p.best_gains = buffers.best_gains.data_ptr<float>();
  p.best_indices = buffers.best_indices.data_ptr<int>();
  p.picked = buffers.picked.data_ptr<int64_t>();
  p.picked_gains = buffers.picked_gains.data_ptr<float>();
}

std::tuple<at::Tensor, at::Tensor> greedy_round_op(
    const at::Tensor& residuals, const OptionalTensor& embeddings, const at::Tensor& val_logits,
    const at::Tensor& val_labels, const OptionalTensor& val_embeddings, int64_t budget,
    double eta, int64_t sample_size, int64_t pairwise_limit, int64_t blocks, int64_t seed) {
  check_input(residuals, "residuals", at::kFloat);
  check_input(val_logits, "val_logits", at::kFloat);
  check_input(val_labels, "val_labels", at::kLong);
  check_optional(embeddings, "embeddings");
  check_optional(val_embeddings, "val_embeddings");
  const bool linear = optional_data(embeddings) != nullptr;
  TORCH_CHECK(linear == (optional_data(val_embeddings) != nullptr),
              "embeddings and val_embeddings must be given together");
  TORCH_CHECK(budget >= 1 && budget <= residuals.size(0), "budget must be in [1, ",
              residuals.size(0), "], got ", budget);
  TORCH_CHECK(val_logits.size(0) >= 1, "val_logits must have at least one row");
  const c10::cuda::CUDAGuard guard(residuals.device());
  const int device = residuals.get_device();
  TORCH_CHECK(device_attribute(cudaDevAttrCooperativeLaunch, device),
              "CUDA device ", device, " does not support cooperative launches");

  dsslab::Problem p = dsslab::round_sizes(
      residuals.size(0), residuals.size(1), linear ? embeddings->size(1) : 0,
      val_logits.size(0), budget, static_cast<float>(eta), static_cast<uint64_t>(seed),
      sample_size, pairwise_limit);
  p.residuals = residuals.data_ptr<float>();
  p.embeddings = optional_data(embeddings);
  p.val_embeddings = optional_data(val_embeddings);
  p.val_labels = val_labels.data_ptr<int64_t>();
  const int shared_limit = device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  TORCH_CHECK(dsslab::plan_shared_memory(p, shared_limit), "stochastic greedy on CUDA keeps a ",
              "bitmap of the ", p.samples, " samples in shared memory, more than this device ",
              "allows (", shared_limit, " bytes); use greedy='naive' or the torch kernels");
  const size_t shared_bytes = dsslab::shared_bytes(p);
  const int grid = dsslab::plan_grid(p, blocks, co_resident_blocks(device, shared_bytes));
  RoundBuffers buffers = allocate(p, val_logits, grid);
  point_at(p, buffers);

  void* arguments[] = {&p};
  C10_CUDA_CHECK(cudaLaunchCooperativeKernel(
      reinterpret_cast<void*>(dsslab::greedy_round_kernel), dim3(grid), dim3(kThreads),
      arguments, shared_bytes, c10::cuda::getCurrentCUDAStream()));
  return {buffers.picked, buffers.picked_gains};
}

}  // namespace

TORCH_LIBRARY(dsslab_kernels, m) {
  m.def("gains(Tensor residuals, Tensor? embeddings, Tensor target_bias, "
        "Tensor? target_weight) -> Tensor");
  m.def("segment_sums(Tensor residuals, Tensor? embeddings, Tensor order, "
        "Tensor sorted_groups, Tensor? weights, int num_groups) -> (Tensor, Tensor)");
  m.def("greedy_round(Tensor residuals, Tensor? embeddings, Tensor val_logits, "
        "Tensor val_labels, Tensor? val_embeddings, int budget, float eta, int sample_size, "
        "int pairwise_limit, int blocks, int seed) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(dsslab_kernels, CUDA, m) {
  m.impl("gains", &gains_op);
  m.impl("segment_sums", &segment_sums_op);
  m.impl("greedy_round", &greedy_round_op);
}
