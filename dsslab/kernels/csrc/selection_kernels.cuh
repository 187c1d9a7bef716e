// Device code of dsslab's selection kernels: last-layer gradient algebra on factors and the
// GLISTER greedy round as one cooperative kernel, plus the launch-layout arithmetic.
//
// A sample's last-layer gradient is the pair (r, e): residual r = softmax(z) - onehot(y) (C
// numbers) and penultimate embedding e (D numbers); the gradient itself, (r, r e^T), is never
// formed. This header uses no PyTorch and no CUDA runtime calls, so that the same code also
// compiles for the CPU under dsslab/kernels/emulator/cuda_on_cpu.h, which is how it is tested
// on machines without a GPU. selection_kernels.cu launches it from PyTorch operators.

#pragma once

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>

#ifndef DSSLAB_EMULATION
#include <cooperative_groups.h>
#define DSSLAB_DYNAMIC_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
#endif

#ifndef DSSLAB_THREADS
#define DSSLAB_THREADS 256  // the CPU emulation builds with fewer to stay quick
#endif

namespace dsslab {

namespace cg = cooperative_groups;

constexpr int kThreads = DSSLAB_THREADS;
constexpr int kWarps = kThreads / 32;
constexpr int kChunk = 128;  // sorted samples one segment_sums block walks through
constexpr unsigned kAllLanes = 0xffffffffu;

// ---------------------------------------------------------------------------------------------
// Warp and block reductions

__device__ __forceinline__ float warp_sum(float value) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    value += __shfl_xor_sync(kAllLanes, value, offset);
  }
  return value;
}

__device__ __forceinline__ float warp_max(float value) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    value = fmaxf(value, __shfl_xor_sync(kAllLanes, value, offset));
  }
  return value;
}

// A scored candidate: its gain and its sample index.
struct Candidate {
  float gain;
  int index;
};

__device__ __forceinline__ Candidate no_candidate() { return {NAN, INT_MAX}; }

// Larger gain wins, a finite gain beats NaN, equal gains go to the lower sample index.
__device__ __forceinline__ bool better(Candidate a, Candidate b) {
  const bool a_nan = isnan(a.gain), b_nan = isnan(b.gain);
  if (a_nan != b_nan) return b_nan;
  if (!a_nan && a.gain != b.gain) return a.gain > b.gain;
  return a.index < b.index;
}

__device__ Candidate warp_best(Candidate mine) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    Candidate other{__shfl_xor_sync(kAllLanes, mine.gain, offset),
                    __shfl_xor_sync(kAllLanes, mine.index, offset)};
    if (better(other, mine)) mine = other;
  }
  return mine;
}

// Best candidate over the block, returned to every thread. scratch holds kWarps + 1 entries.
__device__ Candidate block_best(Candidate mine, Candidate* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  mine = warp_best(mine);
  if (lane == 0) scratch[warp] = mine;
  __syncthreads();
  if (warp == 0) {
    mine = lane < kWarps ? scratch[lane] : no_candidate();
    mine = warp_best(mine);
    if (lane == 0) scratch[kWarps] = mine;
  }
  __syncthreads();
  const Candidate best = scratch[kWarps];
  __syncthreads();  // scratch may be reused right after
  return best;
}

// Exclusive prefix sum over the block; *total receives the block-wide sum.
__device__ int block_exclusive_sum(int value, int* scratch, int* total) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  int inclusive = value;
  for (int offset = 1; offset < 32; offset <<= 1) {
    const int neighbour = __shfl_up_sync(kAllLanes, inclusive, offset);
    if (lane >= offset) inclusive += neighbour;
  }
  if (lane == 31) scratch[warp] = inclusive;
  __syncthreads();
  if (threadIdx.x == 0) {
    int running = 0;
    for (int w = 0; w < kWarps; ++w) {
      const int warp_total = scratch[w];
      scratch[w] = running;
      running += warp_total;
    }
    scratch[kWarps] = running;
  }
  __syncthreads();
  const int exclusive = scratch[warp] + inclusive - value;
  *total = scratch[kWarps];
  __syncthreads();
  return exclusive;
}

// ---------------------------------------------------------------------------------------------
// Counter-based random numbers: every block derives the same draw from (seed, step, draw)
// without communicating. dsslab/kernels/sampling.py mirrors this exactly.

__device__ __forceinline__ uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// An integer in [0, bound) from the high 32 bits of a random word.
__device__ __forceinline__ uint32_t bounded(uint64_t random, uint32_t bound) {
  return static_cast<uint32_t>(((random >> 32) * static_cast<uint64_t>(bound)) >> 32);
}

// ---------------------------------------------------------------------------------------------
// Gains against a summed gradient (g_bias, g_weight): r . g_bias + r^T g_weight e, one warp.

struct ReadOnly {
  __device__ float operator()(const float* address) const { return __ldg(address); }
};
struct Shared {
  __device__ float operator()(const float* address) const { return *address; }
};
// Bypasses L1: the data was written by other blocks of the same cooperative grid.
struct FromL2 {
  __device__ float operator()(const float* address) const { return __ldcg(address); }
};

template <typename Load>
__device__ float factored_gain(const float* residual, const float* embedding,
                               const float* g_bias, const float* g_weight, int classes,
                               int dim, Load load) {
  const int lane = threadIdx.x % 32;
  float total = 0.f;
  for (int c = lane; c < classes; c += 32) total += residual[c] * load(g_bias + c);
  if (g_weight != nullptr) {
    for (int c = 0; c < classes; ++c) {
      const float* row = g_weight + static_cast<int64_t>(c) * dim;
      float projected = 0.f;
      for (int d = lane; d < dim; d += 32) projected += load(row + d) * embedding[d];
      total += residual[c] * projected;
    }
  }
  return warp_sum(total);
}

__global__ void __launch_bounds__(kThreads)
gains_kernel(const float* residuals, const float* embeddings, const float* g_bias,
             const float* g_weight, int samples, int classes, int dim, float* gains) {
  const int lane = threadIdx.x % 32;
  const int warps = gridDim.x * kWarps;
  for (int i = blockIdx.x * kWarps + threadIdx.x / 32; i < samples; i += warps) {
    const float* embedding = embeddings ? embeddings + static_cast<int64_t>(i) * dim : nullptr;
    const float gain = factored_gain(residuals + static_cast<int64_t>(i) * classes, embedding,
                                     g_bias, g_weight, classes, dim, ReadOnly{});
    if (lane == 0) gains[i] = gain;
  }
}

// ---------------------------------------------------------------------------------------------
// Segment sums: for samples sorted by group, sum w r (C entries) and w r e^T (C x D entries) per
// group. A block walks kChunk sorted samples; each thread owns one output entry and flushes its
// running sum with an atomic add whenever the group changes.

__global__ void __launch_bounds__(kThreads)
segment_sums_kernel(const float* residuals, const float* embeddings, const int64_t* order,
                    const int64_t* groups, const float* weights, int samples, int classes,
                    int dim, float* bias_sums, float* weight_sums) {
  const int width = classes * (embeddings ? 1 + dim : 1);
  const int entry = blockIdx.y * kThreads + threadIdx.x;
  if (entry >= width) return;
  const bool bias_entry = entry < classes;
  const int c = bias_entry ? entry : (entry - classes) / dim;
  const int d = bias_entry ? 0 : (entry - classes) % dim;
  const int first = blockIdx.x * kChunk;
  const int last = min(first + kChunk, samples);

  auto flush = [&](int64_t group, float total) {
    if (bias_entry) {
      atomicAdd(bias_sums + group * classes + c, total);
    } else {
      atomicAdd(weight_sums + (group * classes + c) * dim + d, total);
    }
  };
  int64_t current = groups[first];
  float total = 0.f;
  for (int position = first; position < last; ++position) {
    const int64_t group = groups[position];
    if (group != current) {
      flush(current, total);
      current = group;
      total = 0.f;
    }
    const int64_t i = order[position];
    float value = residuals[i * classes + c];
    if (weights) value *= weights[i];
    if (!bias_entry) value *= embeddings[i * dim + d];
    total += value;
  }
  flush(current, total);
}

// ---------------------------------------------------------------------------------------------
// The GLISTER greedy round as one cooperative kernel.
//
// Why one persistent launch: a stochastic round at CIFAR-10 scale makes 13,500 picks, each a
// few microseconds of work. A host loop of launches pays several microseconds of launch
// latency per kernel, three or more kernels per pick, which alone is about the 50 ms budget; a
// captured CUDA graph shrinks but keeps a per-node cost. A persistent grid pays one grid
// barrier per pick on the stochastic path and never returns to the host until the round ends.
//
// Block b owns validation rows [b * rows_per_block, ...): it keeps their logits Z in a working
// copy and recomputes their residuals q = softmax(Z) - onehot(y) every step. Each step scores
// the candidates against the mean validation gradient, picks the best, and moves the owned rows
// of Z. Every block derives the same pick from the same reduced numbers, so picks never travel
// through the host. Two ways to score, chosen per step by the candidate count:
//   pairwise (1 grid barrier): each block sums its rows' share of every candidate's gain,
//     (r_c . q_v)(1 + e_v . e_c), or r_c . q_v in bias mode, either pair by pair or against
//     its rows' summed gradient, whichever is cheaper; every block then adds all the shares.
//   sharded (3 barriers): blocks sum their rows' share of the gradient (g_b, G_W), then reduce
//     it entry-wise, then score a slice of the candidates each, then agree on the best.
// Buffers written between barriers alternate by step parity, so a fast block never overwrites
// what a slow block is still reading. The remaining samples live in pool[0, remaining); every
// block applies the same swap-remove to pool/position itself (identical values), so no block
// depends on another's writes there. Data other blocks wrote is read with __ldcg (L2), never
// through a possibly stale L1 line.

struct Problem {
  const float* residuals;       // N x C
  const float* embeddings;      // N x D, null in bias mode
  const float* val_embeddings;  // M x D, null in bias mode
  const int64_t* val_labels;    // M
  float* val_logits;            // M x C working copy, moved after every pick
  float* val_residuals;         // M x C scratch
  int* pool;                    // N: remaining samples first
  int* position;                // N: where each sample sits in pool
  int* slots;                   // 2 x N: this step's candidates
  float* partials;              // 2 x blocks x partial_stride
  float* gradient;              // 2 x width: reduced (g_b, G_W) for the sharded path
  float* best_gains;            // 2 x blocks
  int* best_indices;            // 2 x blocks
  int64_t* picked;              // k
  float* picked_gains;          // k
  uint64_t seed;
  float eta;
  int samples, classes, dim, val_samples, budget;
  int sample_size;              // candidates per step; >= samples means all remaining
  int pairwise_limit;           // score pairwise when the candidate count is at most this
  int rows_per_block, partial_stride, width;
  int shared_floats, bitmap_words;
  bool gradient_in_shared;      // the sharded path stages the reduced gradient in shared memory
  bool local_gradient;          // last-layer pairwise path sums the owned rows' gradient first
};

struct Rows {
  int first, last;
};

// Floyd's algorithm picks sample_size distinct positions of pool[0, remaining) into a shared
// bitmap (one thread, a few cycles per draw); the block then lists them in position order.
__device__ void draw_candidates(const Problem& p, int step, int remaining, unsigned* bitmap,
                                int* slots, int* scan_scratch) {
  if (threadIdx.x == 0) {
    const uint64_t key = mix64(p.seed);
    for (int draw = 0; draw < p.sample_size; ++draw) {
      const uint32_t top = remaining - p.sample_size + draw;
      const uint64_t counter = (static_cast<uint64_t>(step) << 32) | static_cast<uint32_t>(draw);
      uint32_t chosen = bounded(mix64(key ^ counter), top + 1);
      if (bitmap[chosen >> 5] & (1u << (chosen & 31))) chosen = top;
      bitmap[chosen >> 5] |= 1u << (chosen & 31);
    }
  }
  __syncthreads();
  const int words = (remaining + 31) / 32;
  const int per_thread = (words + kThreads - 1) / kThreads;
  const int first = min(threadIdx.x * per_thread, words);
  const int last = min(first + per_thread, words);
  int count = 0;
  for (int w = first; w < last; ++w) count += __popc(bitmap[w]);
  int total;
  int slot = block_exclusive_sum(count, scan_scratch, &total);
  for (int w = first; w < last; ++w) {
    for (unsigned bits = bitmap[w]; bits != 0; bits &= bits - 1) {
      slots[slot++] = p.pool[w * 32 + __ffs(bits) - 1];
    }
    bitmap[w] = 0;
  }
  __syncthreads();
}

__device__ void copy_remaining(const Problem& p, int remaining, int* slots) {
  for (int s = threadIdx.x; s < remaining; s += kThreads) slots[s] = p.pool[s];
  __syncthreads();
}

// q_v = softmax(Z_v) - onehot(y_v) for the owned rows, one warp per row.
__device__ void compute_val_residuals(const Problem& p, Rows rows) {
  const int lane = threadIdx.x % 32, classes = p.classes;
  for (int v = rows.first + threadIdx.x / 32; v < rows.last; v += kWarps) {
    const float* logits = p.val_logits + static_cast<int64_t>(v) * classes;
    float* residual = p.val_residuals + static_cast<int64_t>(v) * classes;
    float peak = -INFINITY;
    for (int c = lane; c < classes; c += 32) peak = fmaxf(peak, logits[c]);
    peak = warp_max(peak);
    float total = 0.f;
    for (int c = lane; c < classes; c += 32) total += expf(logits[c] - peak);
    total = warp_sum(total);
    const int64_t label = p.val_labels[v];
    for (int c = lane; c < classes; c += 32) {
      residual[c] = expf(logits[c] - peak) / total - (c == label ? 1.f : 0.f);
    }
  }
  __syncthreads();
}

// This block's share of the summed validation gradient: sum_v q_v, then sum_v q_v e_v^T.
__device__ void gradient_partials(const Problem& p, Rows rows, float* out) {
  const int classes = p.classes, dim = p.dim;
  for (int entry = threadIdx.x; entry < p.width; entry += kThreads) {
    float total = 0.f;
    if (entry < classes) {
      for (int v = rows.first; v < rows.last; ++v) {
        total += p.val_residuals[static_cast<int64_t>(v) * classes + entry];
      }
    } else {
      const int c = (entry - classes) / dim, d = (entry - classes) % dim;
      for (int v = rows.first; v < rows.last; ++v) {
        total += p.val_residuals[static_cast<int64_t>(v) * classes + c] *
                 __ldg(p.val_embeddings + static_cast<int64_t>(v) * dim + d);
      }
    }
    out[entry] = total;
  }
}

// This block's share of every candidate's gain, times M (the division comes after the sum).
// Bias mode and, when it is cheaper, last-layer mode first sum the owned rows' gradient
// (sum_v q_v, sum_v q_v e_v^T) into shared memory and score each candidate against it;
// otherwise every (candidate, row) pair is formed directly.
__device__ void pairwise_partials(const Problem& p, Rows rows, const int* slots, int count,
                                  float* shared_floats, float* out) {
  const int lane = threadIdx.x % 32, classes = p.classes, dim = p.dim;
  if (p.local_gradient) {
    gradient_partials(p, rows, shared_floats);
    __syncthreads();
    for (int s = threadIdx.x / 32; s < count; s += kWarps) {
      const int64_t sample = slots[s];
      const float gain = factored_gain(p.residuals + sample * classes,
                                       p.embeddings + sample * dim, shared_floats,
                                       shared_floats + classes, classes, dim, Shared{});
      if (lane == 0) out[s] = gain;
    }
    return;
  }
  if (p.embeddings == nullptr) {
    // Bias mode: sum_v r_c . q_v = r_c . (sum_v q_v), so sum the rows once.
    for (int c = threadIdx.x; c < classes; c += kThreads) {
      float total = 0.f;
      for (int v = rows.first; v < rows.last; ++v) {
        total += p.val_residuals[static_cast<int64_t>(v) * classes + c];
      }
      shared_floats[c] = total;
    }
    __syncthreads();
    for (int s = threadIdx.x; s < count; s += kThreads) {
      const float* residual = p.residuals + static_cast<int64_t>(slots[s]) * classes;
      float total = 0.f;
      for (int c = 0; c < classes; ++c) total += __ldg(residual + c) * shared_floats[c];
      out[s] = total;
    }
    return;
  }
  for (int s = threadIdx.x / 32; s < count; s += kWarps) {
    const int64_t sample = slots[s];
    const float* residual = p.residuals + sample * classes;
    const float* embedding = p.embeddings + sample * dim;
    float total = 0.f;
    for (int v = rows.first; v < rows.last; ++v) {
      const float* val_residual = p.val_residuals + static_cast<int64_t>(v) * classes;
      const float* val_embedding = p.val_embeddings + static_cast<int64_t>(v) * dim;
      float residual_dot = 0.f, embedding_dot = 0.f;
      for (int c = lane; c < classes; c += 32) {
        residual_dot += __ldg(residual + c) * val_residual[c];
      }
      for (int d = lane; d < dim; d += 32) {
        embedding_dot += __ldg(embedding + d) * __ldg(val_embedding + d);
      }
      total += warp_sum(residual_dot) * (1.f + warp_sum(embedding_dot));
    }
    if (lane == 0) out[s] = total;
  }
}

// Every block adds the shares of every candidate and takes the best, identically.
__device__ Candidate pairwise_pick(const Problem& p, const float* partials, const int* slots,
                                   int count, Candidate* scratch) {
  Candidate best = no_candidate();
  for (int s = threadIdx.x; s < count; s += kThreads) {
    float total = 0.f;
    for (int b = 0; b < static_cast<int>(gridDim.x); ++b) {
      total += __ldcg(partials + static_cast<int64_t>(b) * p.partial_stride + s);
    }
    const Candidate candidate{total / p.val_samples, slots[s]};
    if (better(candidate, best)) best = candidate;
  }
  return block_best(best, scratch);
}

// Entry-wise mean over the blocks' shares, each entry by one thread of the grid.
__device__ void reduce_gradient(const Problem& p, const float* partials, float* gradient) {
  const int stride = gridDim.x * kThreads;
  for (int entry = blockIdx.x * kThreads + threadIdx.x; entry < p.width; entry += stride) {
    float total = 0.f;
    for (int b = 0; b < static_cast<int>(gridDim.x); ++b) {
      total += __ldcg(partials + static_cast<int64_t>(b) * p.partial_stride + entry);
    }
    gradient[entry] = total / p.val_samples;
  }
}

// Gains of this block's slice of the candidates against the reduced gradient; block best.
__device__ Candidate score_slice(const Problem& p, const float* gradient, const int* slots,
                                 int count, float* shared_floats, Candidate* scratch) {
  if (p.gradient_in_shared) {
    for (int entry = threadIdx.x; entry < p.width; entry += kThreads) {
      shared_floats[entry] = __ldcg(gradient + entry);
    }
    __syncthreads();
  }
  const int classes = p.classes, dim = p.dim, warps = gridDim.x * kWarps;
  const float* source = p.gradient_in_shared ? shared_floats : gradient;
  const float* g_weight = p.embeddings ? source + classes : nullptr;
  Candidate best = no_candidate();
  for (int s = blockIdx.x * kWarps + threadIdx.x / 32; s < count; s += warps) {
    const int64_t sample = slots[s];
    const float* residual = p.residuals + sample * classes;
    const float* embedding = p.embeddings ? p.embeddings + sample * dim : nullptr;
    const float gain = p.gradient_in_shared
        ? factored_gain(residual, embedding, source, g_weight, classes, dim, Shared{})
        : factored_gain(residual, embedding, source, g_weight, classes, dim, FromL2{});
    const Candidate candidate{gain, static_cast<int>(sample)};
    if (better(candidate, best)) best = candidate;
  }
  return block_best(best, scratch);
}

__device__ Candidate agree_on_best(const Problem& p, int parity, Candidate* scratch) {
  Candidate best = no_candidate();
  for (int b = threadIdx.x; b < static_cast<int>(gridDim.x); b += kThreads) {
    const int at = parity * gridDim.x + b;
    const Candidate candidate{__ldcg(p.best_gains + at), __ldcg(p.best_indices + at)};
    if (better(candidate, best)) best = candidate;
  }
  return block_best(best, scratch);
}

// Z_v -= eta * (1 + e_v . e_j) * r_j for the owned rows (bias mode: without the e term).
__device__ void move_val_logits(const Problem& p, Rows rows, int picked) {
  const int lane = threadIdx.x % 32, classes = p.classes, dim = p.dim;
  const float* residual = p.residuals + static_cast<int64_t>(picked) * classes;
  for (int v = rows.first + threadIdx.x / 32; v < rows.last; v += kWarps) {
    float step = p.eta;
    if (p.embeddings != nullptr) {
      const float* embedding = p.embeddings + static_cast<int64_t>(picked) * dim;
      const float* val_embedding = p.val_embeddings + static_cast<int64_t>(v) * dim;
      float dot = 0.f;
      for (int d = lane; d < dim; d += 32) dot += __ldg(embedding + d) * __ldg(val_embedding + d);
      step = p.eta * (1.f + warp_sum(dot));
    }
    float* logits = p.val_logits + static_cast<int64_t>(v) * classes;
    for (int c = lane; c < classes; c += 32) logits[c] -= step * __ldg(residual + c);
  }
}

__device__ void remove_from_pool(const Problem& p, int picked, int remaining) {
  if (threadIdx.x == 0) {
    const int at = p.position[picked];
    const int last = p.pool[remaining - 1];
    p.pool[at] = last;
    p.position[last] = at;
  }
}

// One pick: score, agree, record. Returns the pick every block agrees on.
__device__ Candidate pick_one(const Problem& p, cg::grid_group& grid, int step, Rows rows,
                              const int* slots, int count, float* shared_floats,
                              Candidate* scratch) {
  const int parity = step & 1;
  float* partials = p.partials + static_cast<int64_t>(parity) * gridDim.x * p.partial_stride;
  float* own_partials = partials + static_cast<int64_t>(blockIdx.x) * p.partial_stride;
  if (count <= p.pairwise_limit) {
    pairwise_partials(p, rows, slots, count, shared_floats, own_partials);
    grid.sync();
    return pairwise_pick(p, partials, slots, count, scratch);
  }
  float* gradient = p.gradient + static_cast<int64_t>(parity) * p.width;
  gradient_partials(p, rows, own_partials);
  grid.sync();
  reduce_gradient(p, partials, gradient);
  grid.sync();
  const Candidate best = score_slice(p, gradient, slots, count, shared_floats, scratch);
  if (threadIdx.x == 0) {
    p.best_gains[parity * gridDim.x + blockIdx.x] = best.gain;
    p.best_indices[parity * gridDim.x + blockIdx.x] = best.index;
  }
  grid.sync();
  return agree_on_best(p, parity, scratch);
}

// Shared memory of one block: reduction scratch, a float area (sums of q over the owned rows,
// or a gradient), then the candidate-draw bitmap.
constexpr size_t kScratchBytes = ((sizeof(Candidate) + sizeof(int)) * (kWarps + 1) + 15) / 16 * 16;

inline size_t shared_bytes(const Problem& p) {
  return kScratchBytes + sizeof(float) * (static_cast<size_t>(p.shared_floats) + p.bitmap_words);
}

__global__ void __launch_bounds__(kThreads) greedy_round_kernel(Problem p) {
  cg::grid_group grid = cg::this_grid();
  DSSLAB_DYNAMIC_SHARED(shared);
  Candidate* best_scratch = reinterpret_cast<Candidate*>(shared);
  int* scan_scratch = reinterpret_cast<int*>(best_scratch + kWarps + 1);
  float* shared_floats = reinterpret_cast<float*>(shared + kScratchBytes);
  unsigned* bitmap = reinterpret_cast<unsigned*>(shared_floats + p.shared_floats);
  for (int w = threadIdx.x; w < p.bitmap_words; w += kThreads) bitmap[w] = 0u;
  const int first_row = blockIdx.x * p.rows_per_block;
  const Rows rows{first_row, min(first_row + p.rows_per_block, p.val_samples)};
  __syncthreads();

  for (int step = 0; step < p.budget; ++step) {
    const int remaining = p.samples - step;
    const bool sampled = p.sample_size < remaining;
    const int count = sampled ? p.sample_size : remaining;
    int* slots = p.slots + static_cast<int64_t>(step & 1) * p.samples;
    if (sampled) {
      draw_candidates(p, step, remaining, bitmap, slots, scan_scratch);
    } else if (count <= p.pairwise_limit) {
      copy_remaining(p, remaining, slots);
    } else {
      slots = p.pool;  // read only before the last barrier of this step, so it is still intact
    }
    compute_val_residuals(p, rows);
    const Candidate best = pick_one(p, grid, step, rows, slots, count, shared_floats,
                                    best_scratch);
    if (blockIdx.x == 0 && threadIdx.x == 0) {
      p.picked[step] = best.index;
      p.picked_gains[step] = best.gain;
    }
    remove_from_pool(p, best.index, remaining);
    move_val_logits(p, rows, best.index);
    __syncthreads();
  }
}

// ---------------------------------------------------------------------------------------------
// Launch layout, from the sizes in `p` and the device's limits

// The scalar part of a round; dim = 0 in bias mode. Pointers are the caller's to fill.
inline Problem round_sizes(int samples, int classes, int dim, int val_samples, int budget,
                           float eta, uint64_t seed, int64_t sample_size,
                           int64_t pairwise_limit) {
  Problem p{};
  p.samples = samples;
  p.classes = classes;
  p.dim = dim;
  p.val_samples = val_samples;
  p.budget = budget;
  p.eta = eta;
  p.seed = seed;
  p.sample_size = static_cast<int>(std::clamp<int64_t>(sample_size, 1, samples));
  p.pairwise_limit = static_cast<int>(std::clamp<int64_t>(pairwise_limit, 0, samples));
  p.width = classes * (1 + dim);
  p.bitmap_words = p.sample_size < samples ? (samples + 31) / 32 : 0;
  return p;
}

// Decide what lives in shared memory; false when the draw bitmap alone does not fit.
inline bool plan_shared_memory(Problem& p, int64_t shared_limit) {
  const int64_t limit = shared_limit - static_cast<int64_t>(kScratchBytes);
  const int64_t bitmap_bytes = int64_t{4} * p.bitmap_words;
  if (bitmap_bytes + int64_t{4} * p.classes > limit) return false;
  p.gradient_in_shared = int64_t{4} * p.width + bitmap_bytes <= limit;
  p.shared_floats = p.gradient_in_shared ? std::max(p.width, p.classes) : p.classes;
  return true;
}

// Grid size (at most `co_resident` blocks, none without rows) and what follows from it.
inline int plan_grid(Problem& p, int64_t requested, int64_t co_resident) {
  int blocks = static_cast<int>(
      std::min({std::max<int64_t>(requested, 1), co_resident, int64_t{p.val_samples}}));
  p.rows_per_block = (p.val_samples + blocks - 1) / blocks;
  blocks = (p.val_samples + p.rows_per_block - 1) / p.rows_per_block;
  // A candidate costs C (1 + D) against a block's own gradient, rows x (C + D) pair by pair.
  p.local_gradient = p.embeddings != nullptr && p.gradient_in_shared &&
                     int64_t{p.rows_per_block} * (p.classes + p.dim) >= p.width;
  p.partial_stride = std::max(p.width, p.pairwise_limit);
  return blocks;
}

}  // namespace dsslab
