import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** Props of {@link LiveChart}. */
export interface LiveChartProps {
  title: string;
  /** Unit for the axis and the latest-value readout ("conn", "/s", "ms"). */
  unit: string;
  /** Epoch seconds. */
  times: readonly number[];
  values: readonly (number | null)[];
  /** A `#rrggbb` colour (a translucent fill is derived from it). */
  color: string;
  /** Digits after the decimal point in the readout. Default 0. */
  digits?: number;
  testId?: string;
}

const HEIGHT = 160;

/**
 * One live time series drawn with uPlot (a ~50 KB canvas chart library built for streaming data).
 * The chart is created once and fed with `setData`; its width follows its container. A canvas is
 * invisible to screen readers, so the latest value is also given as text.
 */
export function LiveChart({ title, unit, times, values, color, digits = 0, testId }: LiveChartProps) {
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const latest = [...values].reverse().find((value) => value !== null);
  const readout = latest === undefined || latest === null ? 'no data yet' : `${latest.toFixed(digits)} ${unit}`;

  useEffect(() => {
    const element = container.current;
    if (!element) return undefined;
    // Canvas cannot resolve CSS variables: read the theme's colours once.
    const style = getComputedStyle(element);
    const muted = style.getPropertyValue('--muted').trim() || '#666';
    const grid = style.getPropertyValue('--grid').trim() || '#ddd';
    const options: uPlot.Options = {
      width: Math.max(200, element.clientWidth),
      height: HEIGHT,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_self, min, max) => [Math.min(0, min), Math.max(1, max * 1.1)] } },
      axes: [
        { stroke: muted, grid: { stroke: grid }, ticks: { stroke: grid } },
        { stroke: muted, grid: { stroke: grid }, ticks: { stroke: grid }, size: 56 },
      ],
      series: [
        {},
        { label: title, stroke: color, width: 2, fill: `${color}22`, spanGaps: false, points: { show: false } },
      ],
    };
    const chart = new uPlot(options, [[], []], element);
    plot.current = chart;
    const observer = new ResizeObserver(() =>
      chart.setSize({ width: Math.max(200, element.clientWidth), height: HEIGHT }),
    );
    observer.observe(element);
    return () => {
      observer.disconnect();
      chart.destroy();
      plot.current = null;
    };
  }, [title, color]);

  useEffect(() => {
    plot.current?.setData([times as number[], values as (number | null)[]]);
  }, [times, values]);

  return (
    <figure className="chart" data-testid={testId}>
      <figcaption>
        <span>{title}</span>
        <strong className="chart-value">{readout}</strong>
      </figcaption>
      <div ref={container} className="chart-canvas" role="img" aria-label={`${title}: ${readout}`} />
    </figure>
  );
}
