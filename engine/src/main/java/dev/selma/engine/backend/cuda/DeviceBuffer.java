package dev.selma.engine.backend.cuda;

/**
 * A block of device memory from the {@link DeviceMemory} pool.
 *
 * @param pointer the driver's pointer (for copies)
 * @param address its address (for kernel arguments and cuBLAS)
 * @param bytes its size
 */
record DeviceBuffer(CudaDevice.Allocation pointer, long address, long bytes) {}
