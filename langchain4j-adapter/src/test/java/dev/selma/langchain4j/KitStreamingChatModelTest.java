package dev.selma.langchain4j;

import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.listener.ChatModelListener;
import dev.langchain4j.model.chat.common.AbstractStreamingChatModelIT;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.selma.engine.Engine;
import java.io.IOException;
import java.util.List;
import org.junit.jupiter.api.AfterAll;

/**
 * LangChain4j's own conformance suite for {@link StreamingChatModel}s ({@code langchain4j-core} tests jar),
 * run on a random-weight Llama 3.1 model whose template renders tools.
 *
 * <p>What runs: maxOutputTokens in the request, in default parameters and wrapped in
 * {@link SelmaChatRequestParameters}; and the "fails clearly" tests for what Selma does not support
 * (another modelName, ToolChoice.REQUIRED, JSON response formats, images as base64 and as URLs).
 *
 * <p>What cannot apply, and is therefore overridden here as a plain method (not a test): tests whose
 * assertion is world knowledge a random-weight model lacks ("Berlin", a German translation, a call to
 * the weather tool for Munich, "Hello" before a stop sequence), and tests of features Selma declares
 * unsupported (their "fails clearly" twins run instead). The contracts those tests check besides the
 * answer (usage, finish reasons, tool rendering and parsing, stop sequences) are tested in
 * {@link SelmaChatModelTest}, {@link SelmaStreamingChatModelTest} and {@link ToolCallsTest}. The
 * streaming tests also check that partial answers concatenate to the final text, arrive on one thread
 * other than the caller's, and that onCompleteResponse comes once.
 */
class KitStreamingChatModelTest extends AbstractStreamingChatModelIT {
  private final Engine engine;
  private final SelmaStreamingChatModel model;

  KitStreamingChatModelTest() throws IOException {
    engine = TestModels.load(TestModels.LLAMA31_TOOLS, 1024);
    model = SelmaStreamingChatModel.builder().engine(engine).build();
  }

  @AfterAll
  void close() {
    model.close();
    engine.close();
  }

  /**
   * The kit's own opt-out (its tests skip their body when this is null), taken for its three tests
   * that need it: each asks "What is the capital of Germany?" and asserts "Berlin". The contracts
   * they check (exceptions thrown by onPartialResponse and onCompleteResponse reach onError and the
   * listeners, exceptions from onError are ignored) are tested in {@link SelmaStreamingChatModelTest}.
   * The kit's streaming cancellation test ({@code should_cancel_streaming}) runs.
   */
  @Override
  public StreamingChatModel createModelWith(ChatModelListener listener) {
    return null;
  }

  @Override
  protected List<StreamingChatModel> models() {
    return List.of(model);
  }

  @Override
  protected StreamingChatModel createModelWith(ChatRequestParameters parameters) {
    return SelmaStreamingChatModel.builder().engine(engine).defaultRequestParameters(parameters).build();
  }

  @Override
  protected ChatRequestParameters createIntegrationSpecificParameters(int maxOutputTokens) {
    return SelmaChatRequestParameters.builder().maxOutputTokens(maxOutputTokens).build();
  }

  @Override
  protected boolean supportsModelNameParameter() {
    return false;
  }

  @Override
  protected boolean supportsToolChoiceRequired() {
    return false;
  }

  @Override
  protected boolean supportsToolChoiceRequiredWithSingleTool() {
    return false;
  }

  @Override
  protected boolean supportsToolChoiceRequiredWithMultipleTools() {
    return false;
  }

  @Override
  protected boolean supportsJsonResponseFormat() {
    return false;
  }

  @Override
  protected boolean supportsJsonResponseFormatWithSchema() {
    return false;
  }

  @Override
  protected boolean supportsJsonResponseFormatWithRawSchema() {
    return false;
  }

  @Override
  protected boolean supportsToolsAndJsonResponseFormatWithSchema() {
    return false;
  }

  @Override
  protected boolean supportsSingleImageInputAsBase64EncodedString() {
    return false;
  }

  @Override
  protected boolean supportsMultipleImageInputsAsBase64EncodedStrings() {
    return false;
  }

  @Override
  protected boolean supportsSingleImageInputAsPublicURL() {
    return false;
  }

  @Override
  protected boolean supportsMultipleImageInputsAsPublicURLs() {
    return false;
  }

  @Override
  protected Class<? extends dev.langchain4j.model.chat.response.ChatResponseMetadata> chatResponseMetadataType(
      StreamingChatModel m) {
    return SelmaChatResponseMetadata.class;
  }

  // Not applicable: the assertion is world knowledge a random-weight model does not have.

  @Override
  protected void should_respect_user_message(StreamingChatModel m) {}

  @Override
  protected void should_respect_system_message(StreamingChatModel m) {}

  @Override
  protected void should_respect_multiple_messages(StreamingChatModel m) {}

  @Override
  protected void should_respect_stopSequences_in_chat_request(StreamingChatModel m) {}

  @Override
  protected void should_respect_stopSequences_in_default_model_parameters() {}

  @Override
  protected void should_execute_a_tool_then_answer(StreamingChatModel m) {}

  @Override
  protected void should_execute_a_tool_without_arguments_then_answer(StreamingChatModel m) {}

  @Override
  protected void should_execute_multiple_tools_in_parallel_then_answer(StreamingChatModel m) {}

  // Not applicable: Selma supports tools, maxOutputTokens and stop sequences, so the "fails" tests of
  // those do not apply; it does not support these features, whose "fails clearly" tests run instead.

  @Override
  protected void should_fail_if_tools_are_not_supported(StreamingChatModel m) {}

  @Override
  protected void should_fail_if_maxOutputTokens_parameter_is_not_supported(StreamingChatModel m) {}

  @Override
  protected void should_fail_if_stopSequences_parameter_is_not_supported(StreamingChatModel m) {}

  @Override
  protected void should_respect_modelName_in_chat_request(StreamingChatModel m) {}

  @Override
  protected void should_respect_modelName_in_default_model_parameters() {}

  @Override
  protected void should_force_LLM_to_execute_any_tool(StreamingChatModel m) {}

  @Override
  protected void should_force_LLM_to_execute_specific_tool(StreamingChatModel m) {}

  @Override
  protected void should_respect_JSON_response_format(StreamingChatModel m) {}

  @Override
  protected void should_respect_JSON_response_format_with_schema(StreamingChatModel m) {}

  @Override
  protected void should_respect_JsonRawSchema_responseFormat(StreamingChatModel m) {}

  @Override
  protected void should_execute_a_tool_then_answer_respecting_JSON_response_format_with_schema(StreamingChatModel m) {}

  @Override
  protected void should_accept_single_image_as_base64_encoded_string(StreamingChatModel m) {}

  @Override
  protected void should_accept_multiple_images_as_base64_encoded_strings(StreamingChatModel m) {}

  @Override
  protected void should_accept_single_image_as_public_URL(StreamingChatModel m) {}

  @Override
  protected void should_accept_multiple_images_as_public_URLs(StreamingChatModel m) {}
}
