"""The topic router: training, prediction, evaluation."""
