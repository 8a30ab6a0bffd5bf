import t from 'tap'
import { memoryAdapter } from '../../src/adapters/memory.js'
import { adapterContract } from './contract.js'

adapterContract(t, { make: () => memoryAdapter(), shared: false })
