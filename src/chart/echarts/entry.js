// The parts of Apache ECharts netdigest draws with, bundled by scripts/echarts-bundle
// into echarts.min.js (see README.md beside this file). A chart kind or component
// that is not listed here draws nothing: add it here, then run the script.
import * as echarts from 'echarts/core';
import { BarChart, LineChart, PieChart, ScatterChart } from 'echarts/charts';
import {
  GridComponent,
  LegendComponent,
  TitleComponent,
  TooltipComponent,
} from 'echarts/components';
import { CanvasRenderer, SVGRenderer } from 'echarts/renderers';

echarts.use([
  BarChart,
  LineChart,
  PieChart,
  ScatterChart,
  GridComponent,
  LegendComponent,
  TitleComponent,
  TooltipComponent,
  // SVG for the images drawn in QuickJS; canvas, ECharts' default, for index.html.
  SVGRenderer,
  CanvasRenderer,
]);

export * from 'echarts/core';
