import type { FastifyInstance } from 'fastify';
import type { Authenticator } from '../services/auth/authenticator.js';
import { AppError } from '../core/errors.js';
import { idParams, taskRequest } from './api-schemas.js';
import { parseInput } from './parse-input.js';
import type { TaskCreated, TaskKindsResponse, TaskView } from '@infinitescribe/protocol';
import type { TaskRunner } from '../services/tasks/task-runner.js';

/** Options of {@link registerTaskRoutes}. */
export interface TaskRoutesOptions {
  authenticator: Authenticator;
  tasks: TaskRunner;
}

/**
 * docs/http-api.md, "Long-running tasks": `POST /api/tasks` `{kind, input?}` → 202 `{taskId}`,
 * `GET /api/tasks/kinds` → `{kinds}`, `GET /api/tasks/:id` → where it stands,
 * `POST /api/tasks/:id/cancel` → 202. All need a Bearer token (or the cookie); a task is visible to
 * its owner only (others get 404).
 */
export function registerTaskRoutes(app: FastifyInstance, options: TaskRoutesOptions): void {
  const { authenticator, tasks } = options;

  app.get('/api/tasks/kinds', async (request): Promise<TaskKindsResponse> => {
    await authenticator.authenticate(request);
    return { kinds: tasks.kinds() };
  });

  app.post('/api/tasks', async (request, reply): Promise<TaskCreated> => {
    const principal = await authenticator.authenticate(request);
    if (request.body === undefined) throw new AppError('invalid_request', 'body must be a JSON object');
    const body = parseInput(taskRequest, request.body);
    const taskId = await tasks.create(principal.userId, body.kind, body.input);
    reply.code(202);
    return { taskId };
  });

  app.post('/api/tasks/:id/cancel', async (request, reply): Promise<{ taskId: string }> => {
    const principal = await authenticator.authenticate(request);
    const { id } = parseInput(idParams, request.params);
    await tasks.cancel(principal.userId, id);
    reply.code(202);
    return { taskId: id };
  });

  app.get('/api/tasks/:id', async (request): Promise<TaskView> => {
    const principal = await authenticator.authenticate(request);
    const { id } = parseInput(idParams, request.params);
    return tasks.get(principal.userId, id);
  });
}
