import type { Authenticator } from '../services/auth/authenticator.js';
import { idParams, taskCreated, taskKinds, taskRequest, taskView } from './api-schemas.js';
import type { TaskCreated, TaskKindInfo, TaskKindsResponse, TaskView } from '@infinitescribe/protocol';
import type { TaskRunner } from '../services/tasks/task-runner.js';
import {
  AUTH_ERRORS,
  JOB_BY_ID_ERRORS,
  JOB_CANCEL_ERRORS,
  JOB_START_ERRORS,
  USER_AUTH,
  defineRoute,
  type JsonObject,
  type RouteDefinition,
} from './route-definition.js';

/** Options of {@link taskRoutes}. */
export interface TaskRoutesOptions {
  authenticator: Authenticator;
  tasks: TaskRunner;
}

/**
 * docs/http-api.md, "Long-running tasks": the kinds, start, read and cancel. All need a Bearer
 * token (or the cookie); a task is visible to its owner only (others get 404).
 */
export function taskRoutes(options: TaskRoutesOptions): RouteDefinition[] {
  const { authenticator, tasks } = options;
  const authenticate = authenticator.authenticate.bind(authenticator);
  return [
    defineRoute({
      method: 'GET',
      url: '/api/tasks/kinds',
      operationId: 'listTaskKinds',
      tag: 'tasks',
      summary: 'The task kinds, with their stages and input JSON Schema',
      credentials: USER_AUTH,
      authenticate,
      answers: { 200: { description: 'Every kind.', schema: taskKinds } },
      errors: [...AUTH_ERRORS],
      handler: async (): Promise<TaskKindsResponse> => ({ kinds: tasks.kinds() }),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/tasks',
      operationId: 'startTask',
      tag: 'tasks',
      summary: 'Start a long-running task',
      description:
        'Runs server-side; `task.*` events follow on `user:<sub>`. TASK_MAX_CONCURRENT_PER_USER run ' +
        'at once, up to TASK_MAX_QUEUED_PER_USER more wait as `queued`.',
      credentials: USER_AUTH,
      authenticate,
      body: {
        schema: taskRequest,
        // The kinds this runner was given (the host's own included), each with its input schema.
        document: { schema: taskRequestDocument(tasks.kinds()), component: 'TaskRequest' },
        example: { kind: 'demo', input: { stages: 2, stageMs: 100 } },
      },
      answers: { 202: { description: 'Accepted (running or queued).', schema: taskCreated } },
      errors: JOB_START_ERRORS,
      handler: async ({ principal, body, reply }): Promise<TaskCreated> => {
        const taskId = await tasks.create(principal.userId, body.kind, body.input);
        reply.code(202);
        return { taskId };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/tasks/:id',
      operationId: 'getTask',
      tag: 'tasks',
      summary: 'Where a task stands (owner only)',
      credentials: USER_AUTH,
      authenticate,
      params: idParams,
      answers: { 200: { description: 'The task.', schema: taskView } },
      errors: JOB_BY_ID_ERRORS,
      handler: ({ principal, params }): Promise<TaskView> => tasks.get(principal.userId, params.id),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/tasks/:id/cancel',
      operationId: 'cancelTask',
      tag: 'tasks',
      summary: 'Cancel a task',
      credentials: USER_AUTH,
      authenticate,
      params: idParams,
      answers: { 202: { description: 'Cancelled, or already finished.', schema: taskCreated } },
      errors: JOB_CANCEL_ERRORS,
      handler: async ({ principal, params, reply }): Promise<{ taskId: string }> => {
        await tasks.cancel(principal.userId, params.id);
        reply.code(202);
        return { taskId: params.id };
      },
    }),
  ];
}

/** `{kind, input}` as one variant per kind, so /docs shows each kind's input schema. */
function taskRequestDocument(kinds: readonly TaskKindInfo[]): JsonObject {
  return {
    oneOf: kinds.map((kind) => ({
      type: 'object',
      title: kind.kind,
      description: `${kind.description} Stages: ${kind.stages.join(', ')}.`,
      required: ['kind'],
      additionalProperties: false,
      properties: { kind: { const: kind.kind }, input: kind.input },
    })),
  };
}
