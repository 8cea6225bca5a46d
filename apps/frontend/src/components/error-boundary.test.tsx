// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { useState } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ErrorBoundary } from './error-boundary.js';

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

let shouldThrow = true;
function Fragile() {
  if (shouldThrow) throw new Error('chart exploded');
  return <p>all good</p>;
}

describe('ErrorBoundary', () => {
  it('shows a useful fallback instead of a blank page, and can try again', () => {
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    function Page() {
      const [, rerender] = useState(0);
      return (
        <>
          <button onClick={() => rerender((count) => count + 1)}>outside</button>
          <ErrorBoundary area="the operations page">
            <Fragile />
          </ErrorBoundary>
        </>
      );
    }
    render(<Page />);
    const fallback = screen.getByTestId('error-fallback');
    expect(fallback.getAttribute('role')).toBe('alert');
    expect(fallback.textContent).toContain('Something went wrong in the operations page.');
    expect(fallback.textContent).toContain('chart exploded');
    shouldThrow = false;
    fireEvent.click(screen.getByRole('button', { name: 'Try again' }));
    expect(screen.getByText('all good')).toBeTruthy();
  });
});
