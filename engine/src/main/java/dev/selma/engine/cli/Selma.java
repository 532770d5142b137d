package dev.selma.engine.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code selma} command line. */
@Command(name = "selma", mixinStandardHelpOptions = true, version = "selma 0.1.0",
    description = "Long-context LLM engine: run, inspect and convert Llama-family models.",
    subcommands = {GenerateCommand.class, InspectCommand.class, ConvertCommand.class, EvalCommand.class})
public final class Selma {
  public static void main(String[] args) {
    System.exit(run(args));
  }

  /** Runs the command line on standard output and error and returns its exit code. */
  public static int run(String... args) {
    return run(new java.io.PrintWriter(System.out, true), new java.io.PrintWriter(System.err, true), args);
  }

  /** Runs the command line on the given writers and returns its exit code. */
  public static int run(java.io.PrintWriter out, java.io.PrintWriter err, String... args) {
    return new CommandLine(new Selma())
        .setOut(out)
        .setErr(err)
        .setExecutionExceptionHandler((e, cmd, parsed) -> {
          String message = e instanceof java.nio.file.NoSuchFileException
              ? "no such file: " + e.getMessage()
              : e.getMessage() == null ? e.toString() : e.getMessage();
          cmd.getErr().println("selma: " + message);
          return 1;
        })
        .execute(args);
  }
}
