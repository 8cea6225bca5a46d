import { Component, type ErrorInfo, type ReactNode } from 'react';

/** Props of {@link ErrorBoundary}. */
export interface ErrorBoundaryProps {
  /** What this boundary protects, shown in the fallback ("the editor"). */
  area: string;
  children: ReactNode;
}

interface State {
  error: Error | null;
}

/**
 * Catches render errors below it and shows what happened with ways out (try again, reload),
 * instead of a blank page. Errors are still logged to the console for error trackers.
 */
export class ErrorBoundary extends Component<ErrorBoundaryProps, State> {
  override state: State = { error: null };

  static getDerivedStateFromError(error: unknown): State {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }

  override componentDidCatch(error: Error, info: ErrorInfo): void {
    console.error(`Error in ${this.props.area}:`, error, info.componentStack);
  }

  private readonly reset = () => this.setState({ error: null });

  override render(): ReactNode {
    const { error } = this.state;
    if (!error) return this.props.children;
    return (
      <div className="error-fallback" role="alert" data-testid="error-fallback">
        <h2>Something went wrong in {this.props.area}.</h2>
        <p>Your document is kept in this tab. Try again, or reload the page if the problem stays.</p>
        <p className="error-message">{error.message}</p>
        <div className="actions">
          <button type="button" className="button primary" onClick={this.reset}>
            Try again
          </button>
          <button type="button" className="button" onClick={() => window.location.reload()}>
            Reload the page
          </button>
        </div>
        {error.stack && (
          <details>
            <summary>Technical details</summary>
            <pre>{error.stack}</pre>
          </details>
        )}
      </div>
    );
  }
}
