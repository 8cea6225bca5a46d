import { AppError } from '../../core/errors.js';
import type { PreparedTask, RunnableTaskKind, TaskKindInfo } from './task-kind.js';

/** The kinds a server offers, by name (`GET /api/tasks/kinds`, `POST /api/tasks`). */
export class TaskCatalog {
  private readonly kinds = new Map<string, RunnableTaskKind>();

  constructor(kinds: readonly RunnableTaskKind[]) {
    for (const kind of kinds) {
      if (this.kinds.has(kind.name)) throw new Error(`task kind "${kind.name}" is defined twice`);
      this.kinds.set(kind.name, kind);
    }
  }

  /** Every kind, in the order given. */
  list(): TaskKindInfo[] {
    return [...this.kinds.values()].map((kind) => kind.info());
  }

  /**
   * The task of kind `name` with `input`, ready to run.
   * @throws AppError `invalid_request` for an unknown kind (naming the known ones) or a bad input.
   */
  prepare(name: string, input: unknown): PreparedTask {
    const kind = this.kinds.get(name);
    if (!kind) {
      throw new AppError(
        'invalid_request',
        `unknown task kind "${name}"; known kinds: ${[...this.kinds.keys()].join(', ')}`,
      );
    }
    return kind.prepare(input);
  }
}
