package dev.selma.engine.tokenizer.template;

/**
 * The template itself refused the conversation by calling {@code raise_exception(message)}, as
 * Mistral's template does when roles do not alternate. {@link #detail()} is the template's message,
 * unchanged.
 */
public final class TemplateRaisedException extends TemplateException {
  TemplateRaisedException(String templateMessage, int line, int column) {
    super(templateMessage, line, column);
  }
}
