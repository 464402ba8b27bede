import LetheCommandLine
import LetheNN

// Per-batch activations and im2col buffers reuse freed heap pages instead of faulting in fresh ones.
AllocatorTuning.keepFreedMemory()
CommandRunner.main(LetheCommand.self)
