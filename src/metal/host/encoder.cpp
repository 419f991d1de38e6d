// The encoder: pipeline, buffers in index order, threadgroup memory, grid.
#ifndef ONEBIT_WITH_METAL
#error "src/metal/host is built only with ONEBIT_WITH_METAL (macOS, see setup.py)"
#endif

#include "encoder.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "errors.h"
#include "library.h"

namespace onebit {
namespace metal {

namespace {

// One resolved binding: either inline bytes or a buffer at an offset.
struct Resolved {
  NS::UInteger index;
  const std::vector<std::uint8_t>* bytes;  // inline contents (setBytes), or null
  Bound buffer;
};

// Everything that can fail is checked before a command buffer exists, so an
// exception never leaves an encoder open.
std::vector<Resolved> resolve(MTL::Device* device, const Dispatch& dispatch, const Operands& operands) {
  std::vector<Resolved> resolved;
  for (const Binding& b : dispatch.buffers) {
    Resolved r{static_cast<NS::UInteger>(b.index), nullptr, {}};
    if (b.operand != Operand::bytes) {
      const Bound& bound = operands[static_cast<std::size_t>(b.operand)];
      if (!bound.buffer && !bound.bytes.empty()) {  // a small host array (small_array)
        r.bytes = &bound.bytes;
      } else if (!bound.buffer) {
        throw std::runtime_error("[metal] " + dispatch.kernel + ": buffer(" + std::to_string(b.index) +
                                 ") has no operand bound");
      } else {
        r.buffer = bound;
      }
    } else if (fits_inline(b.bytes.size())) {
      r.bytes = &b.bytes;
    } else {
      r.buffer = host_buffer(device, b.bytes.size(), b.bytes.data());
    }
    resolved.push_back(std::move(r));
  }
  return resolved;
}

void check_threads(const Dispatch& dispatch, MTL::ComputePipelineState* state) {
  // The limit is per pipeline (register use can lower it below the device's).
  const std::uint64_t threads = std::uint64_t{dispatch.threads[0]} * dispatch.threads[1] * dispatch.threads[2];
  if (threads > state->maxTotalThreadsPerThreadgroup())
    throw std::runtime_error("[metal] " + dispatch.kernel + ": " + std::to_string(threads) +
                             " threads per threadgroup exceed the pipeline's limit of " +
                             std::to_string(state->maxTotalThreadsPerThreadgroup()));
}

// Metal requires threadgroup memory lengths in multiples of 16 bytes.
NS::UInteger threadgroup_length(std::int64_t bytes) {
  return static_cast<NS::UInteger>((bytes + 15) / 16 * 16);
}

// The planner checked the lengths it sets against the device; the pipeline
// may reserve threadgroup memory of its own (static allocations, tensor ops),
// which only the compiled pipeline knows. Both count against one limit.
void check_threadgroup_memory(const Device& device, const Dispatch& dispatch, MTL::ComputePipelineState* state) {
  std::uint64_t dynamic = 0;
  for (std::int64_t bytes : dispatch.threadgroup_memory) dynamic += threadgroup_length(bytes);
  const std::uint64_t fixed = state->staticThreadgroupMemoryLength();
  const std::uint64_t limit = static_cast<std::uint64_t>(device.caps.max_threadgroup_memory);
  if (fixed + dynamic > limit)
    throw std::runtime_error("[metal] " + dispatch.kernel + ": " + std::to_string(fixed + dynamic) +
                             " bytes of threadgroup memory (" + std::to_string(fixed) + " static in the pipeline + " +
                             std::to_string(dynamic) + " set at run time) exceed the device's " +
                             std::to_string(limit));
}

MTL::Size size_of(const std::array<std::uint32_t, 3>& v) { return MTL::Size(v[0], v[1], v[2]); }

}  // namespace

void execute(Device& device, const Dispatch& dispatch, const Operands& operands) {
  // The planner marks a dispatch with nothing to compute by a zero grid
  // dimension (an empty output).
  for (std::uint32_t n : dispatch.threadgroups)
    if (n == 0) return;
  MTL::ComputePipelineState* state = pipeline(device, dispatch.kernel);
  check_threads(dispatch, state);
  check_threadgroup_memory(device, dispatch, state);
  const std::vector<Resolved> bindings = resolve(device.mtl.get(), dispatch, operands);

  MTL::CommandBuffer* commands = device.queue->commandBuffer();  // autoreleased
  if (commands == nullptr) throw std::runtime_error("[metal] could not create a command buffer");
  MTL::ComputeCommandEncoder* encoder = commands->computeCommandEncoder();
  encoder->setComputePipelineState(state);
  for (const Resolved& r : bindings) {
    if (r.bytes != nullptr)
      encoder->setBytes(r.bytes->data(), r.bytes->size(), r.index);
    else
      encoder->setBuffer(r.buffer.buffer.get(), r.buffer.offset, r.index);
  }
  for (std::size_t j = 0; j < dispatch.threadgroup_memory.size(); ++j)
    encoder->setThreadgroupMemoryLength(threadgroup_length(dispatch.threadgroup_memory[j]), j);
  encoder->dispatchThreadgroups(size_of(dispatch.threadgroups), size_of(dispatch.threads));
  encoder->endEncoding();

  commands->commit();
  commands->waitUntilCompleted();
  if (commands->status() == MTL::CommandBufferStatusError)
    throw std::runtime_error("[metal] " + dispatch.kernel + " failed on the GPU: " + describe(commands->error()));
}

}  // namespace metal
}  // namespace onebit
