import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PRESETS_DOC_FILES, ROOT, withPresetsTable } from '../../../scripts/docs-presets';
import { AutoMLAlgorithm, Preset } from '../domain/automl-training.enums';
import { BUDGETS, presetBudget, presetsTable, tuningBudget } from './training-presets';

describe('presets', () => {
  it.each(PRESETS_DOC_FILES)('%s should carry the presets table `npm run docs:presets` writes', (file) => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    expect(text).toContain(presetsTable());
    expect(withPresetsTable(text, file)).toBe(text);
  });

  it('should refuse a file without exactly one pair of markers', () => {
    expect(() => withPresetsTable('no markers here', 'x.md')).toThrow('x.md: expected one');
  });

  it('should put a value given over the preset and keep the preset for one left out or null', () => {
    const fast = BUDGETS.xgboost[Preset.Fast];
    expect(presetBudget(AutoMLAlgorithm.XgboostRanker, Preset.Fast)).toEqual(fast);
    expect(presetBudget(AutoMLAlgorithm.XgboostRanker, Preset.Fast, { trials: 3 })).toEqual({ ...fast, trials: 3 });
    expect(presetBudget(AutoMLAlgorithm.XgboostRanker, Preset.Fast, { trials: null, time_budget_minutes: 7 })).toEqual({
      ...fast,
      time_budget_minutes: 7,
    });
    const stored = {
      algorithm: AutoMLAlgorithm.XgboostRanker,
      preset: Preset.Fast,
      tuningTrials: 5,
      tuningTimeBudgetMinutes: null,
    };
    expect(tuningBudget(stored)).toEqual({ trials: 5, time_budget_minutes: fast.time_budget_minutes });
  });

  it('should name every algorithm in the table once and state every preset budget', () => {
    const table = presetsTable();
    for (const algorithm of Object.values(AutoMLAlgorithm)) expect(table.split(`\`${algorithm}\``)).toHaveLength(2);
    for (const family of Object.values(BUDGETS)) {
      for (const { trials, time_budget_minutes } of Object.values(family))
        expect(table).toContain(`≤ ${trials} trials, ${time_budget_minutes} min`);
    }
  });
});
