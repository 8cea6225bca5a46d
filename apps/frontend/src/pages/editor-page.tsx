import type { GenerationCreated } from '@infinitescribe/protocol';
import { useGeneration } from '@infinitescribe/react';
import { useEffect, useId, useLayoutEffect, useRef, useState, type KeyboardEvent } from 'react';
import { ProviderNotice } from '../components/provider-notice.js';
import { StreamingText } from '../components/streaming-text.js';
import { TaskPanel } from '../components/task-panel.js';
import { useToastHelpers } from '../components/toasts.js';
import { ApiError, describeError, stringField, type ApiClient } from '../lib/api-client.js';
import { joinContinuation } from '../lib/continuation.js';

/** The server accepts prompts up to 32 000 characters; the end of a long document matters most. */
const PROMPT_CHARS = 8_000;

const SAMPLE_DOCUMENT =
  'The lighthouse keeper had not spoken to anyone in eleven days when the letter arrived. ' +
  'It was addressed in a hand she knew at once,';

/** Props of {@link EditorPage}. */
export interface EditorPageProps {
  api: ApiClient;
  userId: string;
}

/**
 * The document editor: a textarea; "Continue writing" sends the document as the prompt (one
 * request per click) and the continuation streams in place after the text, with a caret, until
 * it ends or Stop (or Escape) cancels it. Then it joins the document, with an Undo.
 */
export function EditorPage({ api, userId }: EditorPageProps) {
  const storageKey = `infinitescribe:document:${userId}`;
  // The running continuation, per tab, so that a reload resumes it.
  const runningKey = `infinitescribe:generation:${userId}`;
  const [restored] = useState(() => readRunning(runningKey));
  const [document, setDocument] = useState(
    () => restored?.base ?? readStored(storageKey, userStorage) ?? SAMPLE_DOCUMENT,
  );
  const [generationId, setGenerationId] = useState<string | null>(restored?.generationId ?? null);
  const [isStarting, setStarting] = useState(false);
  const [isStopping, setStopping] = useState(false);
  const [undo, setUndo] = useState<{ before: string; after: string } | null>(null);
  const [outcome, setOutcome] = useState<string>('');
  // After a reload, what was shown comes back at once (never an empty continuation) and the
  // stream and a GET continue from its seq.
  const generation = useGeneration(generationId, {
    restored: restored && generationId === restored.generationId ? restored.shown : null,
  });
  const toast = useToastHelpers();
  const base = useRef(restored?.base ?? '');
  const startRequested = useRef(false);
  const mergedId = useRef<string | null>(null);
  const textarea = useRef<HTMLTextAreaElement>(null);
  const preview = useRef<HTMLDivElement>(null);
  const stopButton = useRef<HTMLButtonElement>(null);
  const editorId = useId();
  const labelId = `${editorId}-label`;
  const isWriting = isStarting || (generationId !== null && generation.isStreaming);

  useEffect(() => writeStored(storageKey, document, userStorage), [storageKey, document]);

  // Keep what is shown (at most once a frame: the hook renders no faster), for a reload.
  useEffect(() => {
    if (generationId === null || !generation.isStreaming || generation.generationId !== generationId) return;
    const running: RunningGeneration = {
      generationId,
      base: base.current,
      shown: { text: generation.text, seq: generation.seq },
    };
    writeStored(runningKey, JSON.stringify(running), tabStorage);
  }, [generation, generationId, runningKey]);

  // A restored id the server no longer knows would stay `pending` for ever: forget it.
  useEffect(() => {
    const id = restored?.generationId;
    if (id === undefined) return undefined;
    const controller = new AbortController();
    api.get(`/api/ai/generations/${encodeURIComponent(id)}`, controller.signal).catch((error: unknown) => {
      if (!(error instanceof ApiError) || error.status !== 404) return;
      removeStored(runningKey, tabStorage);
      setGenerationId((current) => (current === id ? null : current));
    });
    return () => controller.abort();
  }, [api, restored, runningKey]);

  // When the generation ends, its text joins the document (what was streamed, even if stopped).
  useEffect(() => {
    if (generationId === null || generation.isStreaming || generation.generationId !== generationId) return;
    if (mergedId.current === generationId) return;
    mergedId.current = generationId;
    removeStored(runningKey, tabStorage);
    const addition = joinContinuation(base.current, generation.text);
    const words = countWords(addition);
    if (addition !== '') {
      const after = base.current + addition;
      setDocument(after);
      setUndo({ before: base.current, after });
    }
    if (generation.status === 'completed') setOutcome(`Done: added ${words} ${words === 1 ? 'word' : 'words'}.`);
    if (generation.status === 'cancelled') setOutcome(`Stopped: kept ${words} ${words === 1 ? 'word' : 'words'}.`);
    if (generation.status === 'failed') {
      setOutcome(`Writing failed${words > 0 ? `; kept ${words} words` : ''}.`);
      toast.error('The continuation failed', generation.error);
    }
    requestAnimationFrame(() => {
      const element = textarea.current;
      if (!element) return;
      element.focus();
      element.setSelectionRange(element.value.length, element.value.length);
      element.scrollTop = element.scrollHeight;
    });
  }, [generation, generationId, runningKey, toast]);

  // Keep the newest words in view while they stream.
  useLayoutEffect(() => {
    if (preview.current) preview.current.scrollTop = preview.current.scrollHeight;
  }, [generation.text, isWriting]);

  const continueWriting = async () => {
    // A ref, not state: a double click must not reach the server twice.
    if (startRequested.current || isWriting || document.trim() === '') return;
    startRequested.current = true;
    base.current = document;
    setStarting(true);
    setUndo(null);
    setOutcome('');
    try {
      const body = await api.post('/api/ai/generations', { prompt: document.slice(-PROMPT_CHARS) });
      const id = stringField<GenerationCreated>(body, 'generationId');
      if (!id) throw new Error('The server did not return a generation id.');
      const running: RunningGeneration = { generationId: id, base: base.current, shown: { text: '', seq: -1 } };
      writeStored(runningKey, JSON.stringify(running), tabStorage);
      setGenerationId(id);
      requestAnimationFrame(() => stopButton.current?.focus());
    } catch (error) {
      toast.error('Could not start writing', describeError(error));
    } finally {
      startRequested.current = false;
      setStarting(false);
    }
  };

  const stop = async () => {
    if (generationId === null || isStopping) return;
    setStopping(true);
    try {
      await api.post(`/api/ai/generations/${encodeURIComponent(generationId)}/cancel`);
    } catch (error) {
      toast.error('Could not stop the continuation', describeError(error));
    } finally {
      setStopping(false);
    }
  };

  const onKeyDown = (event: KeyboardEvent) => {
    if (event.key === 'Escape' && isWriting) {
      event.preventDefault();
      void stop();
    }
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey) && !isWriting) {
      event.preventDefault();
      void continueWriting();
    }
  };

  const streamed = joinContinuation(base.current, generation.text);
  const canUndo = undo !== null && undo.after === document && !isWriting;

  return (
    <div className="editor-page" onKeyDown={onKeyDown}>
      <ProviderNotice api={api} />
      <section className="card editor" aria-labelledby={`${editorId}-title`}>
        <div className="editor-head">
          <h2 id={`${editorId}-title`}>Document</h2>
          <span className="muted">{countWords(isWriting ? base.current + streamed : document)} words</span>
        </div>
        <label id={labelId} htmlFor={editorId} className="sr-only">
          Document text
        </label>
        {isWriting ? (
          // The same named field, read-only while the continuation streams in (a div: it holds
          // the live region and the caret, which a textarea cannot).
          <div
            ref={preview}
            id={editorId}
            className="editor-text editor-preview"
            data-testid="editor-preview"
            role="textbox"
            aria-multiline="true"
            aria-readonly="true"
            aria-labelledby={labelId}
            tabIndex={0}
          >
            {base.current}
            <StreamingText text={streamed} isStreaming />
          </div>
        ) : (
          <textarea
            ref={textarea}
            id={editorId}
            className="editor-text"
            value={document}
            onChange={(event) => setDocument(event.target.value)}
            spellCheck
            data-testid="editor"
            placeholder="Start writing, then ask the assistant to continue."
          />
        )}
        <div className="editor-actions">
          {isWriting ? (
            <button
              ref={stopButton}
              type="button"
              className="button danger"
              onClick={() => void stop()}
              disabled={generationId === null || isStopping}
              aria-keyshortcuts="Escape"
              data-testid="stop-button"
            >
              <span aria-hidden="true">■</span> {isStopping ? 'Stopping…' : 'Stop'}
            </button>
          ) : (
            <button
              type="button"
              className="button primary"
              onClick={() => void continueWriting()}
              disabled={document.trim() === ''}
              aria-keyshortcuts="Control+Enter"
              data-testid="continue-button"
            >
              Continue writing
            </button>
          )}
          {canUndo && (
            <button
              type="button"
              className="button"
              onClick={() => {
                setDocument(undo.before);
                setUndo(null);
                setOutcome('Undone.');
              }}
              data-testid="undo-button"
            >
              Undo
            </button>
          )}
          <p
            className="status-line"
            role="status"
            data-testid="generation-status"
            data-status={isStarting ? 'starting' : generation.status}
          >
            {isWriting
              ? isStarting
                ? 'Starting…'
                : 'Writing… (Esc to stop)'
              : outcome || 'Tip: Ctrl+Enter continues writing.'}
          </p>
        </div>
      </section>
      <TaskPanel
        api={api}
        document={document}
        onInsert={(text) => setDocument((current) => current + joinContinuation(current, `\n\n${text}`))}
      />
    </div>
  );
}

function countWords(text: string): number {
  const trimmed = text.trim();
  return trimmed === '' ? 0 : trimmed.split(/\s+/).length;
}

// Storages are reached through getters: reading `localStorage` itself throws where it is blocked.
const userStorage = () => window.localStorage;
const tabStorage = () => window.sessionStorage;

/** The continuation this tab is writing: its id, the document it continues, what it showed of it. */
interface RunningGeneration {
  generationId: string;
  base: string;
  shown: { text: string; seq: number };
}

/** The continuation this tab was writing when it was reloaded. */
function readRunning(key: string): RunningGeneration | null {
  try {
    const parsed: unknown = JSON.parse(readStored(key, tabStorage) ?? 'null');
    const generationId = stringField<RunningGeneration>(parsed, 'generationId');
    const base = stringField<RunningGeneration>(parsed, 'base');
    if (generationId === undefined || base === undefined) return null;
    const shown = (parsed as { shown?: { text?: unknown; seq?: unknown } }).shown;
    const { text, seq } = shown ?? {};
    // An entry written before the shown text was kept restores as "nothing shown yet".
    const isShown = typeof text === 'string' && typeof seq === 'number' && Number.isInteger(seq);
    return { generationId, base, shown: isShown ? { text, seq } : { text: '', seq: -1 } };
  } catch {
    return null;
  }
}

function readStored(key: string, storage: () => Storage): string | null {
  try {
    return storage().getItem(key);
  } catch {
    return null;
  }
}

function writeStored(key: string, value: string, storage: () => Storage): void {
  try {
    storage().setItem(key, value);
  } catch {
    // Storage full or blocked: the document still lives in the page.
  }
}

function removeStored(key: string, storage: () => Storage): void {
  try {
    storage().removeItem(key);
  } catch {
    // Blocked storage kept nothing to remove.
  }
}
