import type { RunnableTaskKind } from '@infinitescribe/server';
import { demoTask } from './demo-task.js';
import { outlineDraftPolishTask } from './outline-draft-polish-task.js';

/** The kinds the standalone host offers: the HTTP contract promises `demo` and `outline-draft-polish`. */
export const DEMO_TASK_KINDS: readonly RunnableTaskKind[] = [demoTask, outlineDraftPolishTask];
