// Maps a checkpoint to its family by config.json's model_type.
import { EngineError } from '../errors';
import type { Checkpoint } from '../sources/checkpoint';
import { SUPPORTED_ARCHS, type ModelSpec } from '../spec';
import { gemmaSpec } from './gemma';
import { gpt2Spec } from './gpt2';
import { llamaSpec } from './llama';
import { neoxSpec } from './neox';
import { olmo2Spec } from './olmo2';
import { phi3Spec } from './phi3';

export function specFromCheckpoint(ck: Checkpoint): ModelSpec {
  const mt = ck.config['model_type'];
  switch (mt) {
    case 'gpt2':
      return gpt2Spec(ck);
    case 'llama':
    case 'mistral':
    case 'qwen2':
    case 'qwen3':
    case 'smollm3':
      return llamaSpec(ck, mt);
    case 'gpt_neox':
      return neoxSpec(ck);
    case 'phi3':
      return phi3Spec(ck);
    case 'gemma':
    case 'gemma2':
    case 'gemma3_text':
    case 'gemma3':
      return gemmaSpec(ck, mt);
    case 'olmo2':
      return olmo2Spec(ck);
    default:
      throw new EngineError(
        'MODEL',
        `${ck.dir}/config.json: model_type ${JSON.stringify(mt ?? null)} is not supported; supported: ${SUPPORTED_ARCHS.join(', ')} (SmolLM is llama)`,
      );
  }
}
