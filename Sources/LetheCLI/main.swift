import LetheCommandLine

CommandRunner.main(LetheCommand.self)
