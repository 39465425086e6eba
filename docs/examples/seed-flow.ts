// The seed application's flow against the ingest server, with plain fetch (Node 18+ or a
// browser; no SDK). Written without TypeScript-only syntax (types are JSDoc), so the test
// suite runs this very file with Node: tests/test_server_typescript.py.
//
//   AI_RUNS_URL=http://127.0.0.1:8400 AI_RUNS_KEY=air_... node seed-flow.ts
//
// 1. create a run (the conversation), 2. create a task keyed by the socket.io task id,
// 3. update it while the response streams (the server debounces), 4. complete it with the
// provider's usage (the server prices it), 5. append the assistant message to the run.

const BASE = process.env.AI_RUNS_URL ?? "http://127.0.0.1:8400";
const KEY = process.env.AI_RUNS_KEY ?? "";

/**
 * POST/PATCH/GET one endpoint; throws with the server's error (field + allowed values).
 * @param {string} method
 * @param {string} path
 * @param {object} [body]
 * @returns {Promise<any>}
 */
async function call(method, path, body) {
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) {
    const { field, problem, allowed } = answer.error;
    throw new Error(`${response.status} ${field}: ${problem}${allowed ? ` (allowed: ${allowed})` : ""}`);
  }
  return answer;
}

/**
 * What the socket.io layer hands us for one request: its task id, the prompt, the streamed
 * text chunks and the provider's final usage (here fixed; in the app, from the provider).
 */
const socketTask = {
  taskId: process.env.SOCKET_TASK_ID ?? crypto.randomUUID(),
  prompt: "Explain row level security in one paragraph",
  chunks: ["Row level ", "security lets ", "Postgres decide ", "which rows each user sees."],
  usage: { prompt_tokens: 812, completion_tokens: 356, prompt_tokens_details: { cached_tokens: 512 } },
};

async function main() {
  // 1. the conversation
  const run = await call("POST", "/v1/runs", {
    source_type: "chat",
    messages: [{ role: "user", content: socketTask.prompt }],
    settings: { model: "gpt-4o", temperature: 0.2 },
  });

  // 2. the request, keyed by the socket.io task id (a retry with the same id is a no-op)
  await call("POST", "/v1/tasks", {
    run_id: run.id,
    task_id: socketTask.taskId,
    provider: "openai",
    endpoint: "chat.completions",
    model: "gpt-4o",
    request_data: { messages: [{ role: "user", content: socketTask.prompt }], temperature: 0.2 },
  });

  // 3. stream: send the full text so far on every chunk; the server writes at most twice a
  //    second per task and keeps the rest in memory (answer: written / buffered / ignored)
  let text = "";
  for (const chunk of socketTask.chunks) {
    text += chunk;
    await call("POST", `/v1/tasks/${socketTask.taskId}/updates`, { response_text: text });
  }

  // 4. finish with the provider's usage as it came (OpenAI, Anthropic and Gemini shapes
  //    are understood); the server computes the cost, TTFT and total time
  const task = await call("POST", `/v1/tasks/${socketTask.taskId}/complete`, {
    response_text: text,
    usage: socketTask.usage,
  });

  // 5. the assistant's message in the conversation, linked to its task
  await call("POST", `/v1/runs/${run.id}/messages`, {
    role: "assistant",
    content: text,
    task_id: socketTask.taskId,
  });

  console.log(JSON.stringify({ run_id: run.id, task_id: task.task_id, cost: task.cost }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
