import LetheCommandLine
import LetheNN
import LetheTensor

// A CPU newer than OpenBLAS gets its generic kernels unless the process starts with OPENBLAS_CORETYPE set.
BLASKernel.restartWithBetterKernelIfNeeded()

// Per-batch activations and im2col buffers reuse freed heap pages instead of faulting in fresh ones.
AllocatorTuning.keepFreedMemory()
CommandRunner.main(LetheCommand.self)
